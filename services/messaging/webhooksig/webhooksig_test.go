package webhooksig_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"outboxsaga.dev/messaging/webhooksig"
)

// The test vector of the Standard Webhooks specification and its reference libraries.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheSpec(t *testing.T) {
	key, err := webhooksig.ParseSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := webhooksig.Sign(key, specID, time.Unix(specTS, 0), []byte(specBody)); got != specSig {
		t.Fatalf("Sign = %q, want %q", got, specSig)
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"with prefix", specSecret, true},
		{"without prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true},
		{"empty", "", false},
		{"prefix only", "whsec_", false},
		{"not base64", "whsec_not base64!", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhooksig.ParseSecret(tt.secret)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseSecret(%q) = %v, want ok=%v", tt.secret, err, tt.ok)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	v, err := webhooksig.NewVerifier(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	at := func(sec int64) func() time.Time { return func() time.Time { return time.Unix(sec, 0) } }
	ts := strconv.Itoa(specTS)
	other := "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
	tests := []struct {
		name    string
		now     int64
		id, ts  string
		sig     string
		body    string
		wantErr error
	}{
		{"the spec's vector", specTS, specID, ts, specSig, specBody, nil},
		{"several signatures, one valid", specTS, specID, ts, other + " " + specSig, specBody, nil},
		{"unknown version skipped", specTS, specID, ts, "v1a,xyz " + specSig, specBody, nil},
		{"4 minutes later", specTS + 240, specID, ts, specSig, specBody, nil},
		{"4 minutes earlier", specTS - 240, specID, ts, specSig, specBody, nil},
		{"no signature", specTS, specID, ts, "", specBody, webhooksig.ErrMissing},
		{"no id", specTS, "", ts, specSig, specBody, webhooksig.ErrMissing},
		{"no timestamp", specTS, specID, "", specSig, specBody, webhooksig.ErrMissing},
		{"timestamp not a number", specTS, specID, "soon", specSig, specBody, webhooksig.ErrStale},
		{"6 minutes later", specTS + 360, specID, ts, specSig, specBody, webhooksig.ErrStale},
		{"6 minutes earlier", specTS - 360, specID, ts, specSig, specBody, webhooksig.ErrStale},
		{"body changed", specTS, specID, ts, specSig, `{"test": 2432232315}`, webhooksig.ErrMismatch},
		{"id changed", specTS, specID + "x", ts, specSig, specBody, webhooksig.ErrMismatch},
		{"wrong signature", specTS, specID, ts, other, specBody, webhooksig.ErrMismatch},
		{"signature not base64", specTS, specID, ts, "v1,!!!", specBody, webhooksig.ErrMismatch},
		{"no version", specTS, specID, ts, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", specBody, webhooksig.ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, val := range map[string]string{webhooksig.HeaderID: tt.id, webhooksig.HeaderTimestamp: tt.ts, webhooksig.HeaderSignature: tt.sig} {
				if val != "" {
					h.Set(k, val)
				}
			}
			if err := v.WithClock(at(tt.now)).Verify(h, []byte(tt.body)); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSignRequestVerifies(t *testing.T) {
	s, err := webhooksig.NewSigner(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	v, err := webhooksig.NewVerifier(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"text":"hello"}`)
	req := httptest.NewRequest(http.MethodPost, "/hooks", nil)
	s.SignRequest(req, "evt-1:customer", body)
	if got := req.Header.Get(webhooksig.HeaderID); got != "evt-1:customer" {
		t.Fatalf("webhook-id = %q", got)
	}
	if err := v.Verify(req.Header, body); err != nil {
		t.Fatalf("Verify of a signed request: %v", err)
	}
	wrong, err := webhooksig.NewVerifier("whsec_" + "c2VjcmV0LW9mLWFub3RoZXItc3RhY2s=")
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.Verify(req.Header, body); !errors.Is(err, webhooksig.ErrMismatch) {
		t.Fatalf("Verify with another secret = %v, want ErrMismatch", err)
	}
}
