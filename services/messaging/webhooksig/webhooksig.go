// Package webhooksig signs and verifies webhook calls with the Standard Webhooks scheme
// (https://www.standardwebhooks.com): three headers,
//
//	webhook-id: <the message's id; a retry keeps it>
//	webhook-timestamp: <unix seconds>
//	webhook-signature: v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>
//
// and a shared secret written `whsec_<base64 of the key bytes>`. The signature header may hold
// several space-separated signatures (a secret being rotated): one valid v1 signature is enough.
// The notification service signs (Signer); the webhook sink verifies (Verifier).
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of the scheme.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret of the scheme.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a call's timestamp may be from the verifier's clock.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify: every one means the call is refused.
var (
	// ErrMissing: a header of the scheme is absent.
	ErrMissing = errors.New("webhook signature: webhook-id, webhook-timestamp and webhook-signature are required")
	// ErrStale: the timestamp is not a number or is too far from now (a replay, or a wrong clock).
	ErrStale = errors.New("webhook signature: the timestamp is malformed or too far from now")
	// ErrMismatch: no signature of the header matches the body.
	ErrMismatch = errors.New("webhook signature: no signature matches")
)

// ParseSecret decodes a secret `whsec_<base64>` into its key bytes. The prefix is optional, as
// the scheme's libraries accept; the key must not be empty.
func ParseSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("webhook secret: want whsec_<base64 of the key>: %w", err)
	}
	if len(key) == 0 {
		return nil, errors.New("webhook secret: the key is empty")
	}
	return key, nil
}

// Sign returns the v1 signature of body sent as message id at ts: `v1,<base64>`.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, strconv.FormatInt(ts.Unix(), 10), body))
}

// mac is HMAC-SHA256 over "<id>.<timestamp>.<body>".
func mac(key []byte, id, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Signer signs outgoing calls with one secret.
type Signer struct {
	key []byte
	now func() time.Time
}

// NewSigner returns a signer of secret (`whsec_<base64>`).
func NewSigner(secret string) (*Signer, error) {
	key, err := ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, now: time.Now}, nil
}

// SignRequest sets the three headers of the scheme on req for body, under message id (the same
// id on every retry of a message, so that the receiver can drop repeats).
func (s *Signer) SignRequest(req *http.Request, id string, body []byte) {
	ts := s.now()
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(s.key, id, ts, body))
}

// Verifier checks incoming calls against one secret.
type Verifier struct {
	key       []byte
	tolerance time.Duration
	now       func() time.Time
}

// NewVerifier returns a verifier of secret (`whsec_<base64>`) that accepts timestamps within
// DefaultTolerance of now.
func NewVerifier(secret string) (*Verifier, error) {
	key, err := ParseSecret(secret)
	if err != nil {
		return nil, err
	}
	return &Verifier{key: key, tolerance: DefaultTolerance, now: time.Now}, nil
}

// WithClock returns a copy of v that reads the time from now (tests).
func (v *Verifier) WithClock(now func() time.Time) *Verifier {
	c := *v
	c.now = now
	return &c
}

// Verify checks the scheme's headers of a call with body: nil when one of its v1 signatures is
// the body's and its timestamp is within the tolerance; ErrMissing, ErrStale or ErrMismatch
// otherwise. Signatures are compared in constant time.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissing
	}
	sec, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrStale
	}
	if d := v.now().Sub(time.Unix(sec, 0)); d > v.tolerance || d < -v.tolerance {
		return ErrStale
	}
	want := mac(v.key, id, tsText, body)
	for sig := range strings.FieldsSeq(sigs) {
		version, encoded, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrMismatch
}
