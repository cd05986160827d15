package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
)

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		Qty  int    `json:"qty"`
	}
	tests := []struct {
		name        string
		contentType string
		in          string
		wantCode    string // "" = no error
		wantMsg     string
	}{
		{"ok", "application/json", `{"name":"a","qty":1}`, "", ""},
		{"ok with charset", "application/json; charset=utf-8", `{"name":"a","qty":1}`, "", ""},
		{"no content type", "", `{"name":"a"}`, fault.MediaType, "Content-Type: application/json"},
		{"text/plain", "text/plain", `{"name":"a"}`, fault.MediaType, `got "text/plain"`},
		{"form", "application/x-www-form-urlencoded", `name=a`, fault.MediaType, "Content-Type"},
		{"empty", "application/json", ``, fault.Invalid, "empty"},
		{"malformed", "application/json", `{"name":`, fault.Invalid, "malformed JSON"},
		{"syntax", "application/json", `{"name" "a"}`, fault.Invalid, "malformed JSON at byte"},
		{"unknown field", "application/json", `{"name":"a","color":"red"}`, fault.Invalid, `unknown field "color"`},
		{"wrong type", "application/json", `{"qty":"one"}`, fault.Invalid, `field "qty" must be a whole number`},
		{"fraction", "application/json", `{"qty":1.5}`, fault.Invalid, `field "qty" must be a whole number`},
		{"beyond int64", "application/json", `{"qty":9223372036854775808}`, fault.Invalid, `field "qty"`},
		{"two objects", "application/json", `{"name":"a"}{"name":"b"}`, fault.Invalid, "single JSON object"},
		{"too large", "application/json", `{"name":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`, fault.TooLarge, "over 65536 bytes"},
		{"long unknown field is quoted short", "application/json", `{"` + strings.Repeat("f", 1000) + `":1}`, fault.Invalid, "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.in))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var b body
			err := httpapi.DecodeJSON(httptest.NewRecorder(), r, &b)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if fault.Code(err) != tt.wantCode || !strings.Contains(fault.Message(err), tt.wantMsg) {
				t.Fatalf("got %v (code %s), want code %s with %q", err, fault.Code(err), tt.wantCode, tt.wantMsg)
			}
			if len(fault.Message(err)) > 300 {
				t.Fatalf("message of %d bytes: quote the client's input short", len(fault.Message(err)))
			}
		})
	}
}

func TestRequireAdmin(t *testing.T) {
	tests := []struct {
		token, header string
		want          int
	}{
		{"", "", 403},
		{"", "Bearer ", 403}, // no token: closed, whatever is sent
		{"s3cret", "", 401},
		{"s3cret", "Bearer wrong", 401},
		{"s3cret", "Bearer s3cret", 200},
	}
	for _, tt := range tests {
		h := httpapi.RequireAdmin(tt.token, zerolog.Nop())(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
		r := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("token %q header %q: got %d, want %d", tt.token, tt.header, w.Code, tt.want)
		}
	}
}

// degradedErr is a probe error that only degrades the service.
type degradedErr struct{ error }

func (degradedErr) Degraded() bool { return true }

func TestMountHealth(t *testing.T) {
	down := errors.New("kafka: no brokers")
	slow := degradedErr{errors.New("connector PAUSED")}
	tests := []struct {
		name       string
		probes     []error
		wantReadyz int
		wantStatus string
	}{
		{name: "all pass", probes: []error{nil, nil}, wantReadyz: 200, wantStatus: "ready"},
		{name: "degraded", probes: []error{nil, slow}, wantReadyz: 200, wantStatus: "degraded"},
		{name: "down", probes: []error{down, nil}, wantReadyz: 503, wantStatus: "unavailable"},
		{name: "down and degraded", probes: []error{down, slow}, wantReadyz: 503, wantStatus: "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var checks []httpapi.Check
			for i, err := range tt.probes {
				checks = append(checks, httpapi.Check{Name: fmt.Sprint("c", i), Probe: func(context.Context) error { return err }})
			}
			r := chi.NewRouter()
			httpapi.MountHealth(r, prometheus.NewRegistry(), checks...)
			for path, want := range map[string]int{"/healthz": 200, "/readyz": tt.wantReadyz, "/metrics": 200} {
				w := httptest.NewRecorder()
				r.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
				if w.Code != want {
					t.Errorf("%s: got %d, want %d", path, w.Code, want)
				}
				if path != "/readyz" {
					continue
				}
				var body struct {
					Status   string
					Degraded map[string]string
					Failed   map[string]string
				}
				_ = json.Unmarshal(w.Body.Bytes(), &body)
				if body.Status != tt.wantStatus {
					t.Errorf("readyz status %q, want %q (%s)", body.Status, tt.wantStatus, w.Body)
				}
				if tt.probes[1] != nil && body.Degraded["c1"] == "" {
					t.Errorf("readyz does not name the degraded check: %s", w.Body)
				}
			}
		})
	}
}

func TestDeadLetterEndpoints(t *testing.T) {
	db := pgtest.MustOpenTestDB(t)
	ctx := context.Background()
	if err := postgres.MigrateMessaging(ctx, db); err != nil {
		t.Fatal(err)
	}
	store := postgres.NewDeadLetters(db, pgtest.MustOutbox(t))
	id, err := store.Store(ctx, "test", &messaging.Message{Record: messaging.Record{Topic: "order-events", Partition: 1, Offset: 7, Key: "o1", Value: []byte("not json")}}, errors.New("undecodable"), 1)
	if err != nil {
		t.Fatal(err)
	}
	fail := true
	replay := func(context.Context, *messaging.Message) error {
		if fail {
			return errors.New("still broken")
		}
		return nil
	}
	r := chi.NewRouter()
	httpapi.MountDeadLetters(r, store, replay, "tok", zerolog.Nop())

	do := func(method, path, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	if w := do("GET", "/dead-letters", ""); w.Code != 401 {
		t.Fatalf("without token: %d", w.Code)
	}
	if w := do("GET", "/dead-letters", "tok"); w.Code != 200 || !strings.Contains(w.Body.String(), `"value":"not json"`) {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	if w := do("GET", "/dead-letters?limit=0", "tok"); w.Code != 400 {
		t.Fatalf("limit=0: %d", w.Code)
	}
	path := "/dead-letters/" + strconv.FormatInt(id, 10) + "/replay"
	if w := do("POST", path, "tok"); w.Code != 422 || !strings.Contains(w.Body.String(), "still broken") {
		t.Fatalf("failing replay: %d %s", w.Code, w.Body)
	}
	fail = false
	if w := do("POST", path, "tok"); w.Code != 200 {
		t.Fatalf("replay: %d %s", w.Code, w.Body)
	}
	if w := do("POST", "/dead-letters/999999/replay", "tok"); w.Code != 404 {
		t.Fatalf("missing: %d %s", w.Code, w.Body)
	}
	dl, err := store.Get(ctx, id)
	if err != nil || dl.ReplayedAt == nil || dl.ReplayError != "" {
		t.Fatalf("after replay: %+v %v", dl, err)
	}
}

func TestPprofNeedsTheAdminToken(t *testing.T) {
	r := httpapi.NewRouter(zerolog.Nop())
	httpapi.MountPprof(r, "s3cret", zerolog.Nop())
	get := func(path, auth string) (int, string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/cmdline"} {
		for _, auth := range []string{"", "Bearer wrong", "s3cret"} {
			if code, _ := get(path, auth); code != http.StatusUnauthorized {
				t.Errorf("GET %s with Authorization %q: %d, want 401", path, auth, code)
			}
		}
	}
	const ok = "Bearer s3cret"
	if code, body := get("/debug/pprof/", ok); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("index: %d %.200q, want 200 listing the profiles", code, body)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1", ok); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.200q", code, body)
	}
	// A CPU profile is a gzipped protobuf.
	if code, body := get("/debug/pprof/profile?seconds=1", ok); code != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("CPU profile: %d %.50q, want 200 and gzip", code, body)
	}
	if code, _ := get("/debug/pprof/no-such-profile", ok); code != http.StatusNotFound {
		t.Errorf("unknown profile: %d, want 404", code)
	}
}

// TestReplayErrorIsRedacted: a replay that fails again with an error quoting the record keeps
// and shows it with the payment token masked, in the answer, the row and the list.
func TestReplayErrorIsRedacted(t *testing.T) {
	db := pgtest.MustOpenTestDB(t)
	ctx := context.Background()
	if err := postgres.MigrateMessaging(ctx, db); err != nil {
		t.Fatal(err)
	}
	store := postgres.NewDeadLetters(db, pgtest.MustOutbox(t))
	value := []byte(`{"data":{"paymentToken":"tok_ok"}}`)
	id, err := store.Store(ctx, "test", &messaging.Message{Record: messaging.Record{Topic: "order-events", Key: "o1", Value: value}}, errors.New("undecodable"), 1)
	if err != nil {
		t.Fatal(err)
	}
	replay := func(_ context.Context, m *messaging.Message) error {
		return fmt.Errorf("still broken: %s; at '/data/paymentToken': 'tok_secret' does not match", m.Value)
	}
	r := chi.NewRouter()
	httpapi.MountDeadLetters(r, store, replay, "tok", zerolog.Nop())
	do := func(method, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	for _, tt := range []struct {
		name string
		got  func() string
	}{
		{"the 422 answer", func() string {
			w := do("POST", "/dead-letters/"+strconv.FormatInt(id, 10)+"/replay")
			if w.Code != 422 {
				t.Fatalf("failing replay: %d %s", w.Code, w.Body)
			}
			return w.Body.String()
		}},
		{"the stored row", func() string {
			dl, err := store.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return dl.ReplayError
		}},
		{"the list", func() string { return do("GET", "/dead-letters").Body.String() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.got()
			if strings.Contains(got, "tok_ok") || strings.Contains(got, "tok_secret") || !strings.Contains(got, messaging.Redacted) {
				t.Fatalf("%s shows a payment token: %s", tt.name, got)
			}
		})
	}
}

// TestWriteErrorFields: an error's fault.Fields join its body, next to code and error, which
// they can never replace.
func TestWriteErrorFields(t *testing.T) {
	err := fault.Reasoned(fault.Conflict, "sold_out", "sku A is sold out")
	err.Fields = map[string]string{"sku": "A", "code": "overridden"}
	rec := httptest.NewRecorder()
	httpapi.WriteError(rec, httptest.NewRequest(http.MethodPost, "/orders", nil), zerolog.Nop(), fmt.Errorf("place order: %w", err))
	if rec.Code != http.StatusConflict {
		t.Errorf("status = %d, want 409", rec.Code)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"code": "sold_out", "sku": "A", "error": "sku A is sold out"}
	if fmt.Sprint(body) != fmt.Sprint(want) {
		t.Errorf("body = %v, want %v", body, want)
	}
}
