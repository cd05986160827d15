package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory/httpapi"
	"outboxsaga.dev/inventory/postgres"
	msghttp "outboxsaga.dev/messaging/httpapi"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
)

const token = "s3cret"

// newServer serves inventory's routes on the shared runtime's router, as the service does
// (health, readiness and metrics are the runtime's: see wiring.TestRun).
func newServer(t *testing.T, adminToken string) (*httptest.Server, *sql.DB) {
	t.Helper()
	db := pgtest.MustOpenTestDB(t)
	if err := msgpg.MigrateService(context.Background(), db, "inventory", postgres.Migrations); err != nil {
		t.Fatalf("Migrate() error = %v", err)
	}
	r := msghttp.NewRouter(zerolog.Nop())
	httpapi.Routes(r, httpapi.Config{Stock: postgres.NewStockLevels(db, pgtest.MustOutbox(t)), AdminToken: adminToken, Log: zerolog.Nop()})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, db
}

type response struct {
	status int
	body   map[string]any
}

func do(t *testing.T, srv *httptest.Server, method, path, auth, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
		if ct := req.URL.Query().Get("ct"); ct != "" { // a test asks for another content type
			req.Header.Set("Content-Type", ct)
		}
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: res.StatusCode}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, raw, err)
	}
	return r
}

func stockJSON(sku string, available, reserved, sold float64) map[string]any {
	return map[string]any{"sku": sku, "available": available, "reserved": reserved, "sold": sold}
}

func assertBody(t *testing.T, got response, wantStatus int, want map[string]any) {
	t.Helper()
	if got.status != wantStatus {
		t.Errorf("status = %d, want %d (body %v)", got.status, wantStatus, got.body)
	}
	for k, v := range want {
		if got.body[k] != v {
			t.Errorf("body[%q] = %v, want %v (body %v)", k, got.body[k], v, got.body)
		}
	}
}

func TestPutAndGetStock(t *testing.T) {
	srv, db := newServer(t, token)
	bearer := "Bearer " + token

	assertBody(t, do(t, srv, http.MethodPut, "/stock/A100", bearer, `{"available": 100}`), http.StatusOK, stockJSON("A100", 100, 0, 0))
	assertBody(t, do(t, srv, http.MethodGet, "/stock/A100", "", ""), http.StatusOK, stockJSON("A100", 100, 0, 0))

	// PUT sets available only: reservations in flight and sales stay.
	if _, err := db.Exec(`UPDATE stock SET reserved = 3, sold = 2 WHERE sku = 'A100'`); err != nil {
		t.Fatal(err)
	}
	assertBody(t, do(t, srv, http.MethodPut, "/stock/A100", bearer, `{"available": 0}`), http.StatusOK, stockJSON("A100", 0, 3, 2))
	assertBody(t, do(t, srv, http.MethodGet, "/stock/A100", "", ""), http.StatusOK, stockJSON("A100", 0, 3, 2))
}

// TestOperatorEndpointsClosedWithoutToken: a service started without ADMIN_TOKEN refuses every
// operator call and changes nothing.
func TestOperatorEndpointsClosedWithoutToken(t *testing.T) {
	srv, db := newServer(t, "")
	for _, auth := range []string{"", "Bearer ", "Bearer anything"} {
		if res := do(t, srv, http.MethodPut, "/stock/A100", auth, `{"available": 5}`); res.status != http.StatusForbidden {
			t.Errorf("PUT /stock with %q and no token configured: %d, want 403", auth, res.status)
		}
	}
	if n := pgtest.Count(t, db, `SELECT count(*) FROM stock`); n != 0 {
		t.Fatalf("a refused call wrote %d stock rows", n)
	}
}

func TestGetStockErrors(t *testing.T) {
	srv, _ := newServer(t, token)
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantCode   string
	}{
		{name: "unknown sku", path: "/stock/NOPE", wantStatus: http.StatusNotFound, wantCode: "not_found"},
		{name: "invalid sku", path: "/stock/bad%20sku", wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "sku too long", path: "/stock/" + strings.Repeat("x", 65), wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "no sku", path: "/stock/", wantStatus: http.StatusNotFound, wantCode: "not_found"},
		{name: "unknown route", path: "/stocks/A100", wantStatus: http.StatusNotFound, wantCode: "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(t, srv, http.MethodGet, tt.path, "", "")
			assertBody(t, got, tt.wantStatus, map[string]any{"code": tt.wantCode})
			if msg, _ := got.body["error"].(string); msg == "" {
				t.Errorf("body %v has no error message", got.body)
			}
		})
	}
}

// Every rejected PUT answers a 4xx in the error shape and writes nothing.
func TestPutStockRejected(t *testing.T) {
	srv, db := newServer(t, token)
	bearer := "Bearer " + token
	tests := []struct {
		name       string
		path       string
		auth       string
		body       string
		wantStatus int
		wantCode   string
	}{
		{name: "no token", auth: "", body: `{"available": 1}`, wantStatus: http.StatusUnauthorized, wantCode: "unauthorized"},
		{name: "wrong token", auth: "Bearer nope", body: `{"available": 1}`, wantStatus: http.StatusUnauthorized, wantCode: "unauthorized"},
		{name: "token without Bearer", auth: token, body: `{"available": 1}`, wantStatus: http.StatusUnauthorized, wantCode: "unauthorized"},
		{name: "negative", auth: bearer, body: `{"available": -1}`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "fraction", auth: bearer, body: `{"available": 1.5}`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "string", auth: bearer, body: `{"available": "1"}`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "null", auth: bearer, body: `{"available": null}`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "over int64", auth: bearer, body: `{"available": 9223372036854775808}`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "missing field", auth: bearer, body: `{}`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "unknown field", auth: bearer, body: `{"available": 1, "reserved": 0}`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "empty body", auth: bearer, body: ``, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "malformed", auth: bearer, body: `{"available": `, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "array", auth: bearer, body: `[1]`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "trailing data", auth: bearer, body: `{"available": 1} {"available": 2}`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "too large", auth: bearer, body: `{"available": 1, "x": "` + strings.Repeat("a", msghttp.MaxBodyBytes) + `"}`, wantStatus: http.StatusRequestEntityTooLarge, wantCode: "too_large"},
		{name: "not JSON content type", path: "/stock/A100?ct=text/plain", auth: bearer, body: `{"available": 1}`, wantStatus: http.StatusUnsupportedMediaType, wantCode: "unsupported_media_type"},
		{name: "over the bound", auth: bearer, body: `{"available": 1000000001}`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
		{name: "invalid sku", path: "/stock/bad%20sku", auth: bearer, body: `{"available": 1}`, wantStatus: http.StatusBadRequest, wantCode: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/stock/A100"
			}
			got := do(t, srv, http.MethodPut, path, tt.auth, tt.body)
			assertBody(t, got, tt.wantStatus, map[string]any{"code": tt.wantCode})
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM stock`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("stock rows = %d, want 0: a rejected request wrote", n)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv, _ := newServer(t, token)
	for _, method := range []string{http.MethodPost, http.MethodDelete, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			assertBody(t, do(t, srv, method, "/stock/A100", "Bearer "+token, `{"available": 1}`),
				http.StatusMethodNotAllowed, map[string]any{"code": "method_not_allowed"})
		})
	}
}
