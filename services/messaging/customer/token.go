// Package customer says who a customer is: the bearer tokens that customers send to place and read
// their orders, the middleware that checks them, and the per-customer request rate.
//
// A customer token is a JWT (RFC 7519) signed with EdDSA over Ed25519 (RFC 8037) by the stack's
// private key; its subject (`sub`) is the customer id, `exp` is required and `iat` is set. The
// services hold only the public key (CUSTOMER_TOKEN_PUBLIC_KEY); whoever mints tokens (make token,
// tests, tools) holds the private key (CUSTOMER_TOKEN_PRIVATE_KEY). Both keys travel as one line of
// standard base64 of their DER: PKCS #8 for the private key, PKIX for the public one, as
//
//	openssl genpkey -algorithm ed25519 | openssl pkey -outform DER | base64 -w0
//	openssl pkey -in key.pem -pubout -outform DER | base64 -w0
//
// print them.
//
// Parsing and signing use github.com/golang-jwt/jwt/v5 with the algorithm pinned to EdDSA
// (jwt.WithValidMethods): a token of any other algorithm ("none", HS256 keyed with the public key,
// RS256, ...) is refused before its signature is looked at.
package customer

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

// Environment variables that carry the keys.
const (
	// PublicKeyEnv is what a verifier reads (the services): the public key, PKIX DER in base64.
	PublicKeyEnv = "CUSTOMER_TOKEN_PUBLIC_KEY"
	// PrivateKeyEnv is what a minter reads (make token, tests, tools): PKCS #8 DER in base64.
	PrivateKeyEnv = "CUSTOMER_TOKEN_PRIVATE_KEY"
)

// MaxSubjectLen is the longest customer id a token may name, in characters: the input bound of
// customerId.
const MaxSubjectLen = 128

// maxTokenLen bounds what is parsed at all; a customer token is about 200 bytes.
const maxTokenLen = 4096

// leeway is the clock skew tolerated on exp and iat.
const leeway = 30 * time.Second

// ErrInvalid is wrapped by every error of Verify: the token is not one this stack's key signed
// for a customer, or it has expired.
var ErrInvalid = errors.New("invalid customer token")

// ParsePublicKey reads an Ed25519 public key from standard base64 of its PKIX DER.
func ParsePublicKey(b64 string) (ed25519.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, fmt.Errorf("customer token public key: not base64: %w", err)
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("customer token public key: not PKIX DER: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("customer token public key: a %T, not an Ed25519 key", k)
	}
	return pub, nil
}

// ParsePrivateKey reads an Ed25519 private key from standard base64 of its PKCS #8 DER.
func ParsePrivateKey(b64 string) (ed25519.PrivateKey, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, fmt.Errorf("customer token private key: not base64: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("customer token private key: not PKCS #8 DER: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("customer token private key: a %T, not an Ed25519 key", k)
	}
	return priv, nil
}

// Sign returns a token for customer subject that expires ttl from now, signed with key.
func Sign(key ed25519.PrivateKey, subject string, ttl time.Duration, now time.Time) (string, error) {
	if err := CheckSubject(subject); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("customer token for %q: the lifetime must be positive, not %s", subject, ttl)
	}
	claims := jwt.RegisteredClaims{
		Subject:   subject,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign customer token for %q: %w", subject, err)
	}
	return tok, nil
}

// Mint returns a token for customer subject that expires ttl from now, signed with the private key
// given as standard base64 of its PKCS #8 DER (what CUSTOMER_TOKEN_PRIVATE_KEY holds).
func Mint(privateKey, subject string, ttl time.Duration) (string, error) {
	key, err := ParsePrivateKey(privateKey)
	if err != nil {
		return "", err
	}
	return Sign(key, subject, ttl, time.Now())
}

// Verifier checks customer tokens against the stack's public key.
type Verifier struct {
	key    ed25519.PublicKey
	parser *jwt.Parser
}

// NewVerifier returns a verifier of tokens signed by the private half of key.
func NewVerifier(key ed25519.PublicKey) *Verifier {
	return newVerifier(key, time.Now)
}

// ParseVerifier returns a verifier for the public key given as standard base64 of its PKIX DER
// (what CUSTOMER_TOKEN_PUBLIC_KEY holds).
func ParseVerifier(publicKey string) (*Verifier, error) {
	key, err := ParsePublicKey(publicKey)
	if err != nil {
		return nil, err
	}
	return NewVerifier(key), nil
}

// Open is how a service starts its verifier from CUSTOMER_TOKEN_PUBLIC_KEY: a key that does not
// parse is an error; no key returns a nil verifier, which closes the customer endpoints (403),
// and logs a warning saying so.
func Open(publicKey string, log zerolog.Logger) (*Verifier, error) {
	if strings.TrimSpace(publicKey) == "" {
		log.Warn().Msg(PublicKeyEnv + " is not set: customer endpoints (orders, payments, deliveries) refuse every customer")
		return nil, nil
	}
	return ParseVerifier(publicKey)
}

func newVerifier(key ed25519.PublicKey, now func() time.Time) *Verifier {
	return &Verifier{key: key, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)}
}

// Verify returns the customer id that token was issued to. The error wraps ErrInvalid when the
// token is malformed, is not signed by this stack's key with EdDSA, has no `exp` or has
// expired, was issued in the future, or names no customer id within the input bounds.
func (v *Verifier) Verify(token string) (string, error) {
	if len(token) > maxTokenLen {
		return "", fmt.Errorf("%w: over %d bytes", ErrInvalid, maxTokenLen)
	}
	var claims jwt.RegisteredClaims
	_, err := v.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := CheckSubject(claims.Subject); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return claims.Subject, nil
}

// CheckSubject accepts what customerId accepts: 1 to MaxSubjectLen printable characters.
func CheckSubject(s string) error {
	switch {
	case s == "":
		return errors.New("no subject (customer id)")
	case !utf8.ValidString(s):
		return errors.New("the subject must be valid UTF-8")
	case utf8.RuneCountInString(s) > MaxSubjectLen:
		return fmt.Errorf("the subject is over %d characters", MaxSubjectLen)
	case strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }):
		return errors.New("the subject must be printable text")
	}
	return nil
}
