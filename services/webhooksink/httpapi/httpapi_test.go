package httpapi_test

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/messaging/service/servicetest"
	"outboxsaga.dev/messaging/webhooksig"
	"outboxsaga.dev/webhooksink"
	"outboxsaga.dev/webhooksink/httpapi"
	"outboxsaga.dev/webhooksink/sinktest"
)

// post sends body to the sink under key (no header when key is ""), as contentType, signed with
// the test sink's secret.
func post(t *testing.T, url, key, contentType, body string) (int, string) {
	t.Helper()
	h := sinktest.SignedHeaders(t, cmp.Or(key, "unkeyed"), []byte(body))
	h["Content-Type"] = contentType
	if key == "" {
		delete(h, "Idempotency-Key")
	}
	return servicetest.Call(t, http.MethodPost, url, body, h)
}

func received(t *testing.T, url string) []webhooksink.Entry {
	t.Helper()
	status, body := servicetest.Call(t, http.MethodGet, url, "", sinktest.ReadHeaders())
	var out []webhooksink.Entry
	if err := json.Unmarshal([]byte(body), &out); status != http.StatusOK || err != nil {
		t.Fatalf("GET %s = %d %s (%v)", url, status, body, err)
	}
	return out
}

// TestReceive: every POST under a key counts, the first body stays, GET /received lists one
// entry per key of the order; what the sink refuses is answered 4xx and not recorded; all of it
// survives the sink being killed and started again.
func TestReceive(t *testing.T) {
	sink := sinktest.Start(t, httpapi.Config{})
	const json = "application/json"
	for _, tc := range []struct {
		path, key, contentType, body string
		want                         int
		wantBody                     string
	}{
		{"/hooks", "e1:customer", json, `{"orderId":"o1","text":"one"}`, 200, `"deliveries":1`},
		{"/hooks", "e1:customer", json, `{"orderId":"o1","text":"changed"}`, 200, `"deliveries":2`},
		{"/other/path", "e1:alert", json, `{"orderId":"o1"}`, 200, `"key":"e1:alert"`},
		{"/hooks", "e2:customer", json, `{"orderId":"o2"}`, 200, `"deliveries":1`},
		{"/hooks", "", json, `{"orderId":"o1"}`, 400, `Idempotency-Key`},
		{"/hooks", "e3:customer", json, `not json`, 400, `JSON object`},
		{"/hooks", "e3:customer", json, `["orderId"]`, 400, `JSON object`},
		{"/hooks", "e3:customer", "text/plain", `{"orderId":"o1"}`, 415, `application/json`},
		{"/hooks", "e3:customer", json, `{"orderId":"o1","text":"` + strings.Repeat("x", 70000) + `"}`, 413, `over`},
	} {
		if status, body := post(t, sink.URL+tc.path, tc.key, tc.contentType, tc.body); status != tc.want || !strings.Contains(body, tc.wantBody) {
			t.Errorf("POST %s key %q: %d %.200s, want %d with %q", tc.path, tc.key, status, body, tc.want, tc.wantBody)
		}
	}
	want := []webhooksink.Entry{
		{Key: "e1:customer", Deliveries: 2, Body: []byte(`{"orderId":"o1","text":"one"}`)},
		{Key: "e1:alert", Deliveries: 1, Body: []byte(`{"orderId":"o1"}`)},
	}
	check := func() {
		t.Helper()
		if got := received(t, sink.URL+"/received?orderId=o1"); !slices.EqualFunc(got, want, sameEntry) {
			t.Errorf("GET /received?orderId=o1 = %+v, want %+v", got, want)
		}
		if got := received(t, sink.URL+"/received"); len(got) != 3 {
			t.Errorf("GET /received = %d entries, want 3: %+v", len(got), got)
		}
		if got := received(t, sink.URL+"/received?limit=1"); len(got) != 1 || got[0].Key != "e2:customer" {
			t.Errorf("GET /received?limit=1 = %+v, want the newest key", got)
		}
	}
	check()
	servicetest.Expect(t, sink.URL,
		servicetest.Request{Method: http.MethodGet, Path: "/received?limit=0", Auth: "Bearer " + sinktest.ReadToken, Want: 400, WantBody: `"code":"invalid"`},
		servicetest.Request{Method: http.MethodGet, Path: "/healthz", Want: 200, WantBody: `"ok"`},
		servicetest.Request{Method: http.MethodGet, Path: "/metrics", Want: 200, WantBody: `webhooksink_posts_total{outcome="invalid"} 5`},
	)
	sink.Stop()
	sink.Restart()
	check()
}

func sameEntry(a, b webhooksink.Entry) bool {
	return a.Key == b.Key && a.Deliveries == b.Deliveries && string(a.Body) == string(b.Body)
}

// TestFailFirst: the first POSTs of every key are refused with the chosen status and recorded
// nowhere; the next one is the key's first delivery.
func TestFailFirst(t *testing.T) {
	sink := sinktest.Start(t, httpapi.Config{FailFirst: 2, FailStatus: http.StatusTooManyRequests})
	for i, want := range []int{429, 429, 200, 200} {
		if status, body := post(t, sink.URL+"/hooks", "k", "application/json", `{"orderId":"o1"}`); status != want {
			t.Errorf("POST %d = %d %s, want %d", i+1, status, body, want)
		}
	}
	if got := sink.Received("o1"); len(got) != 1 || got[0].Deliveries != 2 {
		t.Errorf("Received = %+v, want one key delivered twice", got)
	}
	if got := sink.Keys(); !slices.Equal(got, []string{"k", "k", "k", "k"}) {
		t.Errorf("Keys() = %q", got)
	}
}

// TestSignatures: a POST that is unsigned, signed with another secret, signed for another body
// or id, or stale is answered 401 and not recorded; a header with several signatures passes
// when one is right.
func TestSignatures(t *testing.T) {
	sink := sinktest.Start(t, httpapi.Config{})
	const body = `{"orderId":"o1"}`
	other, err := webhooksig.ParseSecret("whsec_" + "b3RoZXIgc3RhY2sncyBrZXk=")
	if err != nil {
		t.Fatal(err)
	}
	key, err := webhooksig.ParseSecret(sinktest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(id string, at time.Time, sig string) map[string]string {
		return map[string]string{"Idempotency-Key": "k1", webhooksig.HeaderID: id,
			webhooksig.HeaderTimestamp: strconv.FormatInt(at.Unix(), 10), webhooksig.HeaderSignature: sig}
	}
	now := time.Now()
	tests := []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"unsigned", map[string]string{"Idempotency-Key": "k1"}, 401},
		{"another secret", signed("k1", now, webhooksig.Sign(other, "k1", now, []byte(body))), 401},
		{"another body", signed("k1", now, webhooksig.Sign(key, "k1", now, []byte(`{"orderId":"o2"}`))), 401},
		{"another id", signed("k1", now, webhooksig.Sign(key, "k2", now, []byte(body))), 401},
		{"stale", signed("k1", now.Add(-6*time.Minute), webhooksig.Sign(key, "k1", now.Add(-6*time.Minute), []byte(body))), 401},
		{"from the future", signed("k1", now.Add(6*time.Minute), webhooksig.Sign(key, "k1", now.Add(6*time.Minute), []byte(body))), 401},
		{"garbage", signed("k1", now, "v1,AAAA"), 401},
		{"one of several right", signed("k1", now, webhooksig.Sign(other, "k1", now, []byte(body))+" "+webhooksig.Sign(key, "k1", now, []byte(body))), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, answer := servicetest.Call(t, http.MethodPost, sink.URL+"/hooks", body, tt.headers)
			if status != tt.want {
				t.Fatalf("POST = %d %s, want %d", status, answer, tt.want)
			}
			if status == 401 && !strings.Contains(answer, `"code":"bad_signature"`) {
				t.Fatalf("POST = %s, want code bad_signature", answer)
			}
		})
	}
	if got := sink.Received(""); len(got) != 1 || got[0].Deliveries != 1 {
		t.Errorf("Received = %+v, want only the signed POST", got)
	}
	servicetest.Expect(t, sink.URL,
		servicetest.Request{Method: http.MethodGet, Path: "/metrics", Want: 200, WantBody: `webhooksink_posts_total{outcome="unsigned"} 7`})
}

// TestReceivedNeedsTheReadToken: GET /received answers 401 without the read token.
func TestReceivedNeedsTheReadToken(t *testing.T) {
	sink := sinktest.Start(t, httpapi.Config{ReadToken: "s3cret"})
	tests := []struct {
		name, auth string
		want       int
	}{
		{"none", "", 401},
		{"wrong", "Bearer nope", 401},
		{"no scheme", "s3cret", 401},
		{"a prefix", "Bearer s3cre", 401},
		{"right", "Bearer s3cret", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servicetest.Expect(t, sink.URL, servicetest.Request{Method: http.MethodGet, Path: "/received", Auth: tt.auth, Want: tt.want})
		})
	}
}

// TestMaxKeysMetrics: the sink shows how many keys it keeps and how many it forgot.
func TestMaxKeysMetrics(t *testing.T) {
	sink := sinktest.Start(t, httpapi.Config{})
	for _, k := range []string{"a", "b"} {
		if status, body := post(t, sink.URL+"/hooks", k, "application/json", `{"orderId":"o1"}`); status != 200 {
			t.Fatalf("POST %s = %d %s", k, status, body)
		}
	}
	servicetest.Expect(t, sink.URL,
		servicetest.Request{Method: http.MethodGet, Path: "/metrics", Want: 200, WantBody: "webhooksink_keys 2"},
		servicetest.Request{Method: http.MethodGet, Path: "/metrics", Want: 200, WantBody: "webhooksink_evicted_keys_total 0"})
}
