package customer

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

// keys returns a fresh key pair as the environment carries it (base64 of DER).
func keys(t *testing.T) (pub, priv string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(pubDER), base64.StdEncoding.EncodeToString(privDER)
}

// sign signs claims with method and key, whatever they are (to forge tokens).
func sign(t *testing.T, method jwt.SigningMethod, claims jwt.Claims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// opensslPriv and opensslPub are a test-only pair made by `openssl genpkey -algorithm ed25519` and printed as the package
// comment says: the format make up writes.
const (
	opensslPriv = "MC4CAQAwBQYDK2VwBCIEIMDyIHBgvRT7/OPy1oPE4wRqydBZIKzK0akKB1O/ycmh"
	opensslPub  = "MCowBQYDK2VwAyEAYcsImjJKO8bcSgBiv4xYKVE+ezCEi9ca8tl/F7vMIMQ="
)

func TestOpenSSLKeys(t *testing.T) {
	priv, err := ParsePrivateKey(opensslPriv)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(opensslPub + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("the public key is not the private key's")
	}
	tok, err := Mint(opensslPriv, "U1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if sub, err := NewVerifier(pub).Verify(tok); err != nil || sub != "U1" {
		t.Fatalf("Verify = %q, %v; want U1", sub, err)
	}
}

func TestParseKeysRefused(t *testing.T) {
	rsaPKIX := "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAOvNElZigdPObgEAhql/pOfpAqcBiyc0os/tA1uQCU3//VLmQUJYVKoth6E80kPh1DQD8wcu4+faYJ8lTZQexqsCAwEAAQ=="
	tests := []struct {
		name string
		pub  string
		priv string
	}{
		{name: "empty", pub: "", priv: ""},
		{name: "not base64", pub: "%%%", priv: "%%%"},
		{name: "not DER", pub: "aGVsbG8=", priv: "aGVsbG8="},
		{name: "the other half", pub: opensslPriv, priv: opensslPub},
		{name: "rsa", pub: rsaPKIX, priv: rsaPKIX},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParsePublicKey(tt.pub); err == nil {
				t.Error("ParsePublicKey accepted it")
			}
			if _, err := ParsePrivateKey(tt.priv); err == nil {
				t.Error("ParsePrivateKey accepted it")
			}
		})
	}
}

func TestVerify(t *testing.T) {
	pub, priv := keys(t)
	_, otherPriv := keys(t)
	pk, err := ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	osk, err := ParsePrivateKey(otherPriv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := base64.StdEncoding.DecodeString(pub)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(now.Add(d)) }
	valid := jwt.RegisteredClaims{Subject: "U1", IssuedAt: at(0), ExpiresAt: at(time.Hour)}
	good, err := Sign(sk, "U1", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")

	tests := []struct {
		name    string
		token   string
		wantSub string // "": refused
	}{
		{name: "valid", token: good, wantSub: "U1"},
		{name: "valid, unicode subject", token: sign(t, jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: "고객 7", ExpiresAt: at(time.Minute)}, sk), wantSub: "고객 7"},
		{name: "within the clock leeway", token: sign(t, jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: "U1", ExpiresAt: at(-10 * time.Second)}, sk), wantSub: "U1"},
		{name: "expired", token: sign(t, jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: "U1", IssuedAt: at(-2 * time.Hour), ExpiresAt: at(-time.Hour)}, sk)},
		{name: "no exp", token: sign(t, jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: "U1", IssuedAt: at(0)}, sk)},
		{name: "issued in the future", token: sign(t, jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: "U1", IssuedAt: at(time.Hour), ExpiresAt: at(2 * time.Hour)}, sk)},
		{name: "not yet valid", token: sign(t, jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: "U1", NotBefore: at(time.Hour), ExpiresAt: at(2 * time.Hour)}, sk)},
		{name: "missing sub", token: sign(t, jwt.SigningMethodEdDSA, jwt.RegisteredClaims{IssuedAt: at(0), ExpiresAt: at(time.Hour)}, sk)},
		{name: "sub over 128 characters", token: sign(t, jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: strings.Repeat("u", 129), ExpiresAt: at(time.Hour)}, sk)},
		{name: "sub with a control character", token: sign(t, jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: "U1\n", ExpiresAt: at(time.Hour)}, sk)},
		{name: "signed by another key", token: sign(t, jwt.SigningMethodEdDSA, valid, osk)},
		{name: "alg none", token: sign(t, jwt.SigningMethodNone, valid, jwt.UnsafeAllowNoneSignatureType)},
		{name: "alg none, signature kept", token: noneHeader(t) + "." + parts[1] + "." + parts[2]},
		{name: "HS256 keyed with the public key (DER)", token: sign(t, jwt.SigningMethodHS256, valid, pubDER)},
		{name: "HS256 keyed with the public key (raw)", token: sign(t, jwt.SigningMethodHS256, valid, []byte(pk))},
		{name: "HS256 keyed with the base64 text", token: sign(t, jwt.SigningMethodHS256, valid, []byte(pub))},
		{name: "payload changed", token: parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"U2","exp":9999999999}`)) + "." + parts[2]},
		{name: "signature cut", token: parts[0] + "." + parts[1] + "." + parts[2][:10]},
		{name: "two parts", token: parts[0] + "." + parts[1]},
		{name: "empty", token: ""},
		{name: "garbage", token: "not.a.token"},
		{name: "too long", token: good + strings.Repeat("A", maxTokenLen)},
	}
	v := newVerifier(pk, func() time.Time { return now })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := v.Verify(tt.token)
			if tt.wantSub != "" {
				if err != nil || sub != tt.wantSub {
					t.Fatalf("Verify = %q, %v; want %q", sub, err, tt.wantSub)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted it, subject %q", sub)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

// noneHeader is the header of an unsigned token.
func noneHeader(t *testing.T) string {
	t.Helper()
	h, err := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(h)
}

func TestSignRefuses(t *testing.T) {
	_, priv := keys(t)
	tests := []struct {
		name    string
		subject string
		ttl     time.Duration
	}{
		{name: "no subject", subject: "", ttl: time.Hour},
		{name: "no lifetime", subject: "U1", ttl: 0},
		{name: "negative lifetime", subject: "U1", ttl: -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := Mint(priv, tt.subject, tt.ttl); err == nil {
				t.Fatalf("Mint = %q, want an error", tok)
			}
		})
	}
	if _, err := Mint("", "U1", time.Hour); err == nil {
		t.Fatal("Mint without a key: no error")
	}
}

func TestMiddleware(t *testing.T) {
	pub, priv := keys(t)
	v, err := ParseVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Mint(priv, "U1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromContext(r.Context())
		if !ok {
			t.Error("no caller in the context")
		}
		_ = json.NewEncoder(w).Encode(c)
	})
	const admin = "s3cret"
	tests := []struct {
		name       string
		mw         func(http.Handler) http.Handler
		auth       string
		wantStatus int
		wantBody   string // a substring
	}{
		{name: "customer", mw: Require(v, zerolog.Nop()), auth: "Bearer " + tok, wantStatus: 200, wantBody: `"Customer":"U1","Operator":false`},
		{name: "scheme in lower case", mw: Require(v, zerolog.Nop()), auth: "bearer " + tok, wantStatus: 200, wantBody: `"Customer":"U1"`},
		{name: "no header", mw: Require(v, zerolog.Nop()), wantStatus: 401, wantBody: `"code":"unauthorized"`},
		{name: "basic", mw: Require(v, zerolog.Nop()), auth: "Basic dTpw", wantStatus: 401, wantBody: `"code":"unauthorized"`},
		{name: "bearer without a token", mw: Require(v, zerolog.Nop()), auth: "Bearer ", wantStatus: 401, wantBody: `"code":"unauthorized"`},
		{name: "bad token", mw: Require(v, zerolog.Nop()), auth: "Bearer x.y.z", wantStatus: 401, wantBody: `"code":"unauthorized"`},
		{name: "operator token where customers only", mw: Require(v, zerolog.Nop()), auth: "Bearer " + admin, wantStatus: 401, wantBody: `"code":"unauthorized"`},
		{name: "closed without a key", mw: Require(nil, zerolog.Nop()), auth: "Bearer " + tok, wantStatus: 403, wantBody: PublicKeyEnv},
		{name: "operator", mw: RequireOrOperator(v, admin, zerolog.Nop()), auth: "Bearer " + admin, wantStatus: 200, wantBody: `"Customer":"","Operator":true`},
		{name: "operator, no key", mw: RequireOrOperator(nil, admin, zerolog.Nop()), auth: "Bearer " + admin, wantStatus: 200, wantBody: `"Operator":true`},
		{name: "customer where operators too", mw: RequireOrOperator(v, admin, zerolog.Nop()), auth: "Bearer " + tok, wantStatus: 200, wantBody: `"Customer":"U1"`},
		{name: "wrong operator token", mw: RequireOrOperator(v, admin, zerolog.Nop()), auth: "Bearer s3cre", wantStatus: 401},
		{name: "no operator token configured", mw: RequireOrOperator(v, "", zerolog.Nop()), auth: "Bearer ", wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/orders/x", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			tt.mw(echo).ServeHTTP(w, r)
			if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Fatalf("got %d %s, want %d with %q", w.Code, w.Body, tt.wantStatus, tt.wantBody)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestOwns(t *testing.T) {
	tests := []struct {
		name   string
		caller Caller
		owner  string
		want   bool
	}{
		{name: "own", caller: Caller{Customer: "U1"}, owner: "U1", want: true},
		{name: "another's", caller: Caller{Customer: "U2"}, owner: "U1"},
		{name: "unknown owner", caller: Caller{Customer: "U1"}, owner: ""},
		{name: "operator", caller: Caller{Operator: true}, owner: "U1", want: true},
		{name: "operator, unknown owner", caller: Caller{Operator: true}, owner: "", want: true},
		{name: "nobody", caller: Caller{}, owner: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.caller.Owns(tt.owner); got != tt.want {
				t.Fatalf("Owns(%q) = %v, want %v", tt.owner, got, tt.want)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	l := newLimiter(2, 3, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.Allow("U1"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("U1")
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("4th request: ok=%v wait=%s; want refused, wait ≤ 0.5 s", ok, wait)
	}
	if ok, _ := l.Allow("U2"); !ok {
		t.Fatal("another customer's bucket is shared")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("U1"); !ok {
		t.Fatal("refused after the bucket refilled")
	}
	now = now.Add(2 * sweepEvery)
	l.Allow("U3")
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets after a quiet minute, want only U3's", n)
	}
	if ok, _ := (*Limiter)(nil).Allow("U1"); !ok {
		t.Fatal("a nil limiter refused")
	}
	if NewLimiter(0, 10) != nil {
		t.Fatal("rate 0 should limit nothing (nil)")
	}

	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/orders/x", nil)
	r = r.WithContext(WithCaller(r.Context(), Caller{Customer: "U4"}))
	one := newLimiter(1, 1, func() time.Time { return now })
	h := one.Middleware(zerolog.Nop())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), r)
	h.ServeHTTP(w, r)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), `"code":"rate_limited"`) {
		t.Fatalf("over the rate: %d Retry-After=%q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}
