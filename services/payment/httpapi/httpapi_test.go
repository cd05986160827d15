package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/customer"
	msghttp "outboxsaga.dev/messaging/httpapi"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/payment"
	"outboxsaga.dev/payment/app"
	"outboxsaga.dev/payment/httpapi"
	"outboxsaga.dev/payment/postgres"
)

// adminToken is the operator token of these tests.
const adminToken = "op-secret"

// server serves the API over a migrated test database holding one AUTHORIZED and one FAILED
// payment of customer U1's orders, and an AUTHORIZED one (o4) of an order whose customer the
// service never heard of (made before it recorded customers). ready is the consumer's readiness.
// key signs the customers' tokens.
func server(t *testing.T, ready *error) (*httptest.Server, *sql.DB, ed25519.PrivateKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.MustOpenTestDB(t)
	ctx := context.Background()
	if err := msgpg.MigrateService(ctx, db, "payment", postgres.Migrations); err != nil {
		t.Fatal(err)
	}
	repo := postgres.NewPayments(db)
	for _, p := range []payment.Payment{
		{OrderID: "o1", Status: payment.StatusAuthorized, Amount: 39000, Currency: "KRW", Token: "tok_ok", PgTxnID: "ch_1"},
		{OrderID: "o2", Status: payment.StatusFailed, Amount: 15000, Currency: "KRW", Token: "tok_declined", Reason: "CARD_DECLINED"},
		{OrderID: "o4", Status: payment.StatusAuthorized, Amount: 1000, Currency: "KRW", Token: "tok_ok", PgTxnID: "ch_4"},
	} {
		err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
			if p.OrderID != "o4" {
				if err := msgpg.RememberCustomer(ctx, tx, p.OrderID, "U1"); err != nil {
					return err
				}
			}
			return repo.Upsert(ctx, tx, p.OrderID, func(*payment.Payment) (*payment.Payment, error) { return &p, nil })
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "payment_test_total", Help: "test"}))
	// As the shared runtime serves it (service.Serve): its router, health and metrics, then ours.
	r := msghttp.NewRouter(zerolog.Nop())
	msghttp.MountHealth(r, reg,
		msghttp.Check{Name: "postgres", Probe: db.PingContext},
		msghttp.Check{Name: "kafka", Probe: func(context.Context) error { return *ready }},
	)
	httpapi.Routes(r, httpapi.Config{Payments: app.New(db, repo, nil, app.Alerts{}, nil, nil), Customers: customer.NewVerifier(pub), AdminToken: adminToken, Log: zerolog.Nop()})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, db, key
}

func TestAPI(t *testing.T) {
	var ready error
	srv, db, key := server(t, &ready)
	bearer := func(c string) string {
		tok, err := customer.Sign(key, c, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	u1 := bearer("U1")
	tests := []struct {
		name       string
		method     string
		path       string
		auth       string // "": U1's token; "-": none
		notReady   error
		wantStatus int
		wantBody   string // exact JSON, or "" to check only wantCode
		wantCode   string
		wantPart   string // a substring of the body
	}{
		{name: "authorized payment", method: "GET", path: "/payments/o1", wantStatus: 200,
			wantBody: `{"orderId":"o1","status":"AUTHORIZED","amount":39000,"pgTxnId":"ch_1","reason":""}`},
		{name: "failed payment", method: "GET", path: "/payments/o2", wantStatus: 200,
			wantBody: `{"orderId":"o2","status":"FAILED","amount":15000,"pgTxnId":"","reason":"CARD_DECLINED"}`},
		{name: "unknown order", method: "GET", path: "/payments/nope", wantStatus: 404, wantCode: "not_found"},
		{name: "no token", method: "GET", path: "/payments/o1", auth: "-", wantStatus: 401, wantCode: "unauthorized"},
		{name: "bad token", method: "GET", path: "/payments/o1", auth: "Bearer x.y.z", wantStatus: 401, wantCode: "unauthorized"},
		{name: "another customer's order", method: "GET", path: "/payments/o1", auth: bearer("U2"), wantStatus: 404, wantCode: "not_found",
			wantBody: `{"code":"not_found","error":"no payment for order o1"}`},
		{name: "an order of no known customer", method: "GET", path: "/payments/o4", wantStatus: 404, wantCode: "not_found"},
		{name: "operator", method: "GET", path: "/payments/o1", auth: "Bearer " + adminToken, wantStatus: 200,
			wantBody: `{"orderId":"o1","status":"AUTHORIZED","amount":39000,"pgTxnId":"ch_1","reason":""}`},
		{name: "operator, an order of no known customer", method: "GET", path: "/payments/o4", auth: "Bearer " + adminToken, wantStatus: 200,
			wantPart: `"pgTxnId":"ch_4"`},
		{name: "order id too long", method: "GET", path: "/payments/" + strings.Repeat("x", 129), wantStatus: 400, wantCode: "invalid"},
		{name: "order id not UTF-8", method: "GET", path: "/payments/%ff", wantStatus: 400, wantCode: "invalid"},
		{name: "order id with NUL", method: "GET", path: "/payments/o1%00", wantStatus: 400, wantCode: "invalid"},
		{name: "no order id", method: "GET", path: "/payments/", wantStatus: 404, wantCode: "not_found"},
		{name: "unknown route", method: "GET", path: "/orders/o1", wantStatus: 404, wantCode: "not_found"},
		{name: "POST a payment", method: "POST", path: "/payments/o1", wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "DELETE a payment", method: "DELETE", path: "/payments/o1", wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "PUT a payment", method: "PUT", path: "/payments/o3", wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "live", method: "GET", path: "/healthz", wantStatus: 200, wantBody: `{"status":"ok"}`},
		{name: "ready", method: "GET", path: "/readyz", wantStatus: 200, wantBody: `{"status":"ready"}`},
		{name: "not ready without the consumer", method: "GET", path: "/readyz", notReady: errors.New("not joined yet"),
			wantStatus: 503, wantPart: `"kafka":"not joined yet"`},
		{name: "metrics", method: "GET", path: "/metrics", wantStatus: 200, wantPart: "payment_test_total"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready = tt.notReady
			before := snapshot(t, db)
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(`{"status":"VOIDED"}`))
			if err != nil {
				t.Fatal(err)
			}
			switch tt.auth {
			case "":
				req.Header.Set("Authorization", u1)
			case "-":
			default:
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != "" && strings.TrimSpace(string(body)) != tt.wantBody {
				t.Fatalf("body %s, want %s", body, tt.wantBody)
			}
			if tt.wantPart != "" && !strings.Contains(string(body), tt.wantPart) {
				t.Fatalf("body %s, want it to contain %s", body, tt.wantPart)
			}
			if tt.wantCode != "" {
				var e struct{ Error, Code string }
				if err := json.Unmarshal(body, &e); err != nil || e.Code != tt.wantCode || e.Error == "" {
					t.Fatalf("error body %s, want code %q and a message", body, tt.wantCode)
				}
			}
			if after := snapshot(t, db); after != before {
				t.Fatalf("the request changed the database:\n%s\n%s", before, after)
			}
		})
	}
}

// snapshot renders everything the service writes, to prove that requests write nothing.
func snapshot(t *testing.T, db *sql.DB) string {
	t.Helper()
	var s string
	err := db.QueryRow(`SELECT
		(SELECT coalesce(json_agg(p ORDER BY order_id), '[]') FROM payments p)::text ||
		(SELECT count(*) FROM processed_events)::text ||
		(SELECT count(*) FROM dead_letters)::text`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
