package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/webhooksig"
	"outboxsaga.dev/notification"
	"outboxsaga.dev/notification/webhook"
	"outboxsaga.dev/webhooksink/httpapi"
	"outboxsaga.dev/webhooksink/sinktest"
)

var note = notification.Notification{Text: "Your order o1 is confirmed.", Kind: notification.KindCustomer,
	Event: "OrderCompleted", OrderID: "o1", EventID: "e1"}

func client(t *testing.T, url string) *webhook.Client {
	t.Helper()
	c, err := webhook.New(webhook.Config{URL: url, Secret: sinktest.Secret, Timeout: 100 * time.Millisecond, Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond},
		prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPost: the webhook gets the notification's JSON under its key, every attempt under the same
// key; a webhook down (no answer, 5xx, 429, 404) is an outage after the attempts, never poison;
// a 4xx about the request is poison at once.
func TestPost(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sink      httpapi.Config
		down      bool
		wantCalls int
		wantErr   string // "", "outage" or "permanent"
	}{
		{name: "accepted", wantCalls: 1},
		{name: "503 twice, then accepted", sink: httpapi.Config{FailFirst: 2}, wantCalls: 3},
		{name: "503 every time", sink: httpapi.Config{FailFirst: 9}, wantCalls: 3, wantErr: "outage"},
		{name: "429 every time", sink: httpapi.Config{FailFirst: 9, FailStatus: 429}, wantCalls: 3, wantErr: "outage"},
		{name: "404 every time", sink: httpapi.Config{FailFirst: 9, FailStatus: 404}, wantCalls: 3, wantErr: "outage"},
		{name: "no answer", down: true, wantErr: "outage"},
		{name: "400", sink: httpapi.Config{FailFirst: 9, FailStatus: 400}, wantCalls: 1, wantErr: "permanent"},
		{name: "422", sink: httpapi.Config{FailFirst: 9, FailStatus: 422}, wantCalls: 1, wantErr: "permanent"},
	} {
		sink := sinktest.Start(t, tc.sink)
		if tc.down {
			sink.Stop()
		}
		err := client(t, sink.URL+"/hooks").Post(context.Background(), note)
		if got := sink.Keys(); len(got) != tc.wantCalls || slices.ContainsFunc(got, func(k string) bool { return k != "e1:customer" }) {
			t.Errorf("%s: the webhook got keys %q, want e1:customer %d times", tc.name, got, tc.wantCalls)
		}
		switch outage, permanent := messaging.IsOutage(err), messaging.IsPermanent(messaging.Classify(err)); { // permanent: as the consumer takes it
		case tc.wantErr == "" && err != nil,
			tc.wantErr == "outage" && (!outage || permanent),
			tc.wantErr == "permanent" && (outage || !permanent || !errors.Is(err, webhook.ErrRejected)):
			t.Errorf("%s: Post() = %v (outage %v, permanent %v), want %q", tc.name, err, outage, permanent, tc.wantErr)
		}
		if tc.wantErr == "" {
			var body notification.Notification
			if got := sink.Received("o1"); len(got) != 1 || got[0].Deliveries != 1 || json.Unmarshal(got[0].Body, &body) != nil || body != note {
				t.Errorf("%s: the sink holds %+v, want the notification once", tc.name, got)
			}
		}
	}
}

// TestPostSlowOrRedirected: a call over its timeout and a redirect count as the webhook down.
func TestPostSlowOrRedirected(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"slow":       func(http.ResponseWriter, *http.Request) { time.Sleep(300 * time.Millisecond) },
		"redirected": func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) },
	} {
		srv := httptest.NewServer(h)
		err := client(t, srv.URL).Post(context.Background(), note)
		if !messaging.IsOutage(err) || messaging.IsPermanent(err) {
			t.Errorf("%s: Post() = %v, want an outage", name, err)
		}
		srv.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := client(t, "http://127.0.0.1:1/hooks").Post(ctx, note); !errors.Is(err, context.Canceled) || messaging.IsOutage(err) {
		t.Errorf("Post() with a canceled context = %v, want context.Canceled and no outage", err)
	}
}

func TestNew(t *testing.T) {
	for _, cfg := range []webhook.Config{{URL: ""}, {URL: "127.0.0.1:8088/hooks"}, {URL: "ftp://x/y"}, {URL: "http://x", Timeout: -1, Secret: sinktest.Secret},
		{URL: "http://x"}, {URL: "http://x", Secret: "whsec_not base64"}} {
		if _, err := webhook.New(cfg, prometheus.NewRegistry()); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}

// TestPostIsSigned: every attempt carries a Standard Webhooks signature of its body whose
// webhook-id is the Idempotency-Key; a sink with another secret refuses it (401), which is an
// outage (the settings are wrong), never poison, and records nothing.
func TestPostIsSigned(t *testing.T) {
	verifier, err := webhooksig.NewVerifier(sinktest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ids = append(ids, r.Header.Get(webhooksig.HeaderID))
		if err := verifier.Verify(r.Header, body); err != nil || r.Header.Get(webhooksig.HeaderID) != r.Header.Get("Idempotency-Key") {
			t.Errorf("attempt %d: Verify = %v, webhook-id %q", len(ids), err, r.Header.Get(webhooksig.HeaderID))
		}
		w.WriteHeader(http.StatusServiceUnavailable) // every attempt, to see them all
	}))
	defer srv.Close()
	_ = client(t, srv.URL).Post(context.Background(), note)
	if !slices.Equal(ids, []string{"e1:customer", "e1:customer", "e1:customer"}) {
		t.Errorf("webhook-id of the attempts = %q, want e1:customer 3 times", ids)
	}

	sink := sinktest.Start(t, httpapi.Config{Secret: "whsec_b3RoZXIgc3RhY2sncyBrZXk="})
	err = client(t, sink.URL+"/hooks").Post(context.Background(), note)
	if !messaging.IsOutage(err) || messaging.IsPermanent(err) {
		t.Errorf("Post() to a sink with another secret = %v, want an outage", err)
	}
	if got := sink.Received(""); len(got) != 0 {
		t.Errorf("the sink with another secret recorded %+v", got)
	}
}
