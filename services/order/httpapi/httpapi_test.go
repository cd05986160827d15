package httpapi_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/customer"
	msghttp "outboxsaga.dev/messaging/httpapi"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/app"
	"outboxsaga.dev/order/httpapi"
	"outboxsaga.dev/order/postgres"
	"outboxsaga.dev/order/postgres/ordertest"
	"outboxsaga.dev/schemas"
)

// adminToken guards the operator endpoints in these tests.
const adminToken = "op-secret"

const validBody = `{"customerId":"U1","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"A100","qty":2,"unitPrice":15000},{"sku":"B200","qty":1,"unitPrice":9000}]}`

// api is one test's server over a fresh, migrated database.
type api struct {
	t      *testing.T
	db     *sql.DB
	orders *postgres.Orders
	events *postgres.Events
	srv    *httptest.Server
	reg    *prometheus.Registry
	key    ed25519.PrivateKey // signs the customers' tokens
}

func newAPI(t *testing.T) *api { return newAPIWith(t, nil) }

// newAPIWith is newAPI with the application's and the routes' configuration changed by set (nil:
// as they are).
func newAPIWith(t *testing.T, set func(*app.Config, *httpapi.Config)) *api {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	db, dbURL := pgtest.MustOpenTestDBURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := msgpg.MigrateService(ctx, db, "order", postgres.Migrations); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	pgtest.CaptureOutbox(t, db)
	ordertest.CaptureEvents(t, db)
	listener, err := postgres.NewStatusListener(dbURL, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = listener.Run(ctx) }()
	orders := postgres.NewOrders(db)
	prices := postgres.NewPrices(db)
	for _, p := range []order.Price{{SKU: "A100", UnitPrice: 15000, Currency: "KRW"}, {SKU: "B200", UnitPrice: 9000, Currency: "KRW"}} {
		if _, err := prices.Set(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	router := msghttp.NewRouter(zerolog.Nop())
	events := postgres.NewEvents(db, pgtest.MustOutbox(t), nil)
	appCfg := app.Config{DB: db, Orders: orders, Events: events, Prices: prices, Availability: postgres.NewAvailability(db), Deadline: 30 * time.Second}
	cfg := httpapi.Config{
		AdminToken: adminToken, Watcher: listener, Log: zerolog.Nop(), Registry: reg, Customers: customer.NewVerifier(pub),
	}
	if set != nil {
		set(&appCfg, &cfg)
	}
	cfg.App = app.New(appCfg)
	httpapi.Routes(router, cfg)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	return &api{t: t, db: db, orders: orders, events: events, srv: srv, reg: reg, key: key}
}

// bearer is the Authorization header of customer c.
func (a *api) bearer(c string) string {
	a.t.Helper()
	tok, err := customer.Sign(a.key, c, time.Hour, time.Now())
	if err != nil {
		a.t.Fatal(err)
	}
	return "Bearer " + tok
}

// as returns headers with the Authorization of customer c (or, for c == "", none).
func (a *api) as(c string, headers map[string]string) map[string]string {
	a.t.Helper()
	out := map[string]string{"Authorization": ""}
	if c != "" {
		out["Authorization"] = a.bearer(c)
	}
	for k, v := range headers {
		out[k] = v
	}
	return out
}

// do sends a request and returns the status, headers and body. It is sent as customer U1 unless
// headers hold an Authorization (an empty one: none is sent).
func (a *api) do(method, path, body string, headers map[string]string) (int, http.Header, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json") // unless headers say otherwise
	if _, ok := headers["Authorization"]; !ok {
		req.Header.Set("Authorization", a.bearer("U1"))
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	res, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(b)
}

// create posts body and returns the new order id, failing unless the answer is 202.
func (a *api) create(body string, headers map[string]string) string {
	a.t.Helper()
	status, h, resp := a.do(http.MethodPost, "/orders", body, headers)
	if status != http.StatusAccepted {
		a.t.Fatalf("POST /orders = %d %s, want 202", status, resp)
	}
	var got struct{ OrderID, Status string }
	if err := json.Unmarshal([]byte(resp), &got); err != nil {
		a.t.Fatal(err)
	}
	if got.Status != "PENDING" || h.Get("Location") != "/orders/"+got.OrderID {
		a.t.Fatalf("POST /orders answered %s with Location %q", resp, h.Get("Location"))
	}
	return got.OrderID
}

func (a *api) count(query string, args ...any) int { return pgtest.Count(a.t, a.db, query, args...) }

// written counts what requests wrote: orders, items, timeline rows, outbox rows.
func (a *api) written() [4]int {
	a.t.Helper()
	return [4]int{
		a.count(`SELECT count(*) FROM orders`),
		a.count(`SELECT count(*) FROM order_items`),
		a.count(`SELECT count(*) FROM order_timeline`),
		a.count(`SELECT count(*) FROM outbox_seen`),
	}
}

func TestCreateOrder(t *testing.T) {
	a := newAPI(t)
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	id := a.create(validBody, map[string]string{"traceparent": caller})

	status, _, body := a.do(http.MethodGet, "/orders/"+id, "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /orders/%s = %d %s", id, status, body)
	}
	var got struct {
		OrderID, Status, Reason, CustomerID, Currency string
		Items                                         []order.Item
		Amount                                        int64
		CreatedAt, UpdatedAt                          time.Time
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	wantItems := []order.Item{{SKU: "A100", Qty: 2, UnitPrice: 15000}, {SKU: "B200", Qty: 1, UnitPrice: 9000}}
	if got.OrderID != id || got.Status != "PENDING" || got.Reason != "" || got.CustomerID != "U1" || got.Currency != "KRW" ||
		got.Amount != 39000 || fmt.Sprint(got.Items) != fmt.Sprint(wantItems) || got.CreatedAt.IsZero() || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Fatalf("GET /orders/%s = %s", id, body)
	}
	for _, field := range []string{`"orderId"`, `"status"`, `"reason"`, `"customerId"`, `"items"`, `"amount"`, `"currency"`, `"createdAt"`, `"updatedAt"`} {
		if !strings.Contains(body, field) {
			t.Errorf("GET /orders/{id} has no %s: %s", field, body)
		}
	}
	if strings.Contains(body, "tok_ok") {
		t.Errorf("GET /orders/{id} exposes the payment token: %s", body)
	}

	// The event left through the outbox, schema-valid, in the caller's trace.
	var (
		aggregateID, traceparent string
		payload                  []byte
	)
	err := a.db.QueryRow(`SELECT aggregateid, traceparent, payload FROM outbox_seen WHERE type = 'OrderCreated'`).
		Scan(&aggregateID, &traceparent, &payload)
	if err != nil {
		t.Fatalf("read OrderCreated from the outbox: %v", err)
	}
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate("OrderCreated", order.CreatedVersion, payload); err != nil {
		t.Fatalf("OrderCreated does not match its schema: %v\n%s", err, payload)
	}
	tp, err := messaging.ParseTraceparent(traceparent)
	if err != nil || aggregateID != id || tp.TraceID() != "4bf92f3577b34da6a3ce929d0e0e4736" || tp.String() == caller {
		t.Fatalf("outbox row: aggregate %s, traceparent %s; want %s in the caller's trace, a new span", aggregateID, traceparent, id)
	}
	var e messaging.Envelope
	if err := json.Unmarshal(payload, &e); err != nil {
		t.Fatal(err)
	}
	var data order.CreatedData
	if err := json.Unmarshal(e.Data, &data); err != nil || data.Amount != 39000 || data.PaymentToken != "tok_ok" || data.OrderID != id ||
		data.Channel != order.DefaultChannel || e.EventVersion != 2 {
		t.Fatalf("OrderCreated data = %s", e.Data)
	}

	status, _, body = a.do(http.MethodGet, "/orders/"+id+"/events", "", nil)
	var timeline []order.TimelineEntry
	if err := json.Unmarshal([]byte(body), &timeline); status != http.StatusOK || err != nil {
		t.Fatalf("GET /orders/%s/events = %d %s", id, status, body)
	}
	if len(timeline) != 1 || timeline[0].EventType != "OrderCreated" || timeline[0].EventID != e.EventID ||
		timeline[0].Source != "order-service" || timeline[0].RecordedAt.IsZero() || string(timeline[0].Data) == "" {
		t.Fatalf("timeline = %s", body)
	}
}

func TestCreateWithoutTraceparentStartsATrace(t *testing.T) {
	a := newAPI(t)
	for _, tp := range []string{"", "garbage"} {
		id := a.create(validBody, map[string]string{"traceparent": tp})
		var traceID string
		if err := a.db.QueryRow(`SELECT trace_id FROM orders WHERE id = $1`, id).Scan(&traceID); err != nil || len(traceID) != 32 {
			t.Fatalf("trace id %q, %v; want a new one", traceID, err)
		}
	}
}

func TestCreateIdempotent(t *testing.T) {
	a := newAPI(t)
	key := map[string]string{"Idempotency-Key": "checkout-42"}
	id := a.create(validBody, key)
	before := a.written()

	// The same request again, formatted differently, answers the same order and writes nothing.
	reformatted := `{ "items": [{"unitPrice": 15000, "qty": 2, "sku": "A100"}, {"sku":"B200","qty":1,"unitPrice":9000}],
		"paymentToken": "tok_ok", "currency": "KRW", "customerId": "U1" }`
	for _, body := range []string{validBody, reformatted} {
		if again := a.create(body, key); again != id {
			t.Fatalf("replay answered order %s, want %s", again, id)
		}
	}
	if after := a.written(); after != before {
		t.Fatalf("replays wrote: (orders, items, timeline, outbox) %v → %v", before, after)
	}

	// The same key with another request is refused, and writes nothing.
	other := strings.Replace(validBody, `"qty":2`, `"qty":3`, 1)
	status, _, body := a.do(http.MethodPost, "/orders", other, key)
	if status != http.StatusConflict || !strings.Contains(body, `"code":"conflict"`) || !strings.Contains(body, "checkout-42") {
		t.Fatalf("same key, other body = %d %s; want 409 conflict naming the key", status, body)
	}
	if strings.Contains(body, id) {
		t.Fatalf("the conflict reveals the order placed under the key: %s", body)
	}
	if after := a.written(); after != before {
		t.Fatalf("a conflicting request wrote: %v → %v", before, after)
	}

	// Without a key every request is a new order.
	if a.create(validBody, nil) == a.create(validBody, nil) {
		t.Fatal("two requests without a key answered the same order")
	}

	// The key is the customer's: another customer using it places an order of its own, and
	// learns nothing of the first.
	if theirs := a.create(strings.Replace(validBody, `"U1"`, `"U2"`, 1), a.as("U2", key)); theirs == id {
		t.Fatal("another customer's request under the same key answered the first customer's order")
	}
}

// TestPrices: the client never sets what it pays. Orders are priced from the list an operator
// keeps; a price the client was shown must still be the list price.
func TestPrices(t *testing.T) {
	a := newAPI(t)
	admin := map[string]string{"Authorization": "Bearer " + adminToken}
	tests := []struct {
		name, method, path, body string
		headers                  map[string]string
		wantStatus               int
		wantCode                 string
	}{
		{name: "set a price without the token", method: http.MethodPut, path: "/prices/C300", body: `{"unitPrice":500,"currency":"KRW"}`, wantStatus: 401, wantCode: "unauthorized"},
		{name: "set a price", method: http.MethodPut, path: "/prices/C300", body: `{"unitPrice":500,"currency":"KRW"}`, headers: admin, wantStatus: 200},
		{name: "set a negative price", method: http.MethodPut, path: "/prices/C300", body: `{"unitPrice":-1,"currency":"KRW"}`, headers: admin, wantStatus: 400, wantCode: "invalid"},
		{name: "set a price without unitPrice", method: http.MethodPut, path: "/prices/C300", body: `{"currency":"KRW"}`, headers: admin, wantStatus: 400, wantCode: "invalid"},
		{name: "set a price of a bad SKU", method: http.MethodPut, path: "/prices/C%2F1", body: `{"unitPrice":1,"currency":"KRW"}`, headers: admin, wantStatus: 400, wantCode: "invalid"},
		{name: "read a price", method: http.MethodGet, path: "/prices/C300", wantStatus: 200},
		{name: "read no price", method: http.MethodGet, path: "/prices/NOPE", wantStatus: 404, wantCode: "not_found"},
		{name: "order the shown price", method: http.MethodPost, path: "/orders", body: validBody, wantStatus: 202},
		{name: "order without prices", method: http.MethodPost, path: "/orders",
			body: `{"customerId":"U1","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"A100","qty":2},{"sku":"C300","qty":1}]}`, wantStatus: 202},
		{name: "order a changed price", method: http.MethodPost, path: "/orders", body: strings.Replace(validBody, `"unitPrice":15000`, `"unitPrice":1`, 1), wantStatus: 409, wantCode: "price_changed"},
		{name: "order an unpriced SKU", method: http.MethodPost, path: "/orders", body: strings.Replace(validBody, `"B200"`, `"Z999"`, 1), wantStatus: 422, wantCode: "unknown_sku"},
		{name: "order in another currency", method: http.MethodPost, path: "/orders", body: strings.Replace(validBody, `"KRW"`, `"USD"`, 1), wantStatus: 422, wantCode: "currency_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := a.do(tt.method, tt.path, tt.body, tt.headers)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantCode) {
				t.Fatalf("%s %s = %d %s; want %d %s", tt.method, tt.path, status, body, tt.wantStatus, tt.wantCode)
			}
		})
	}
	var got struct {
		Amount int64
		Items  []struct{ UnitPrice int64 }
	}
	id := a.create(`{"customerId":"U1","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"C300","qty":2}]}`, nil)
	if status, _, body := a.do(http.MethodPut, "/prices/C300", `{"unitPrice":900,"currency":"KRW"}`, admin); status != http.StatusOK {
		t.Fatalf("PUT /prices/C300 = %d %s", status, body)
	}
	_, _, body := a.do(http.MethodGet, "/orders/"+id, "", nil)
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Amount != 1000 || got.Items[0].UnitPrice != 500 {
		t.Fatalf("order %s after a price change = %s; want it kept at the price it was placed at (500 × 2)", id, body)
	}
	if n := a.count(`SELECT count(*) FROM orders WHERE amount = 2`); n != 0 {
		t.Fatal("a refused order was written")
	}
}

func TestCreateIdempotentConcurrently(t *testing.T) {
	a := newAPI(t)
	const racers = 10
	ids := make([]string, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/orders", strings.NewReader(validBody))
			req.Header.Set("Idempotency-Key", "race")
			req.Header.Set("Authorization", a.bearer("U1"))
			req.Header.Set("Content-Type", "application/json")
			res, err := a.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			var got struct{ OrderID string }
			_ = json.NewDecoder(res.Body).Decode(&got)
			if res.StatusCode != http.StatusAccepted {
				t.Errorf("racer %d: %d", i, res.StatusCode)
			}
			ids[i] = got.OrderID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("racers got different orders: %v", ids)
		}
	}
	if got := a.written(); got != [4]int{1, 2, 1, 1} {
		t.Fatalf("(orders, items, timeline, outbox) = %v, want [1 2 1 1]", got)
	}
}

func TestCreateRejected(t *testing.T) {
	a := newAPI(t)
	with := func(old, new string) string { return strings.Replace(validBody, old, new, 1) }
	items := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`{"sku":"A%d","qty":1,"unitPrice":1}`, i)
		}
		return `{"customerId":"U1","currency":"KRW","paymentToken":"tok_ok","items":[` + strings.Join(parts, ",") + `]}`
	}
	tests := []struct {
		name       string
		body       string
		headers    map[string]string
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{name: "no content type", body: validBody, headers: map[string]string{"Content-Type": ""}, wantStatus: 415, wantCode: "unsupported_media_type", wantMsg: "Content-Type: application/json"},
		{name: "text/plain (a cross-site form)", body: validBody, headers: map[string]string{"Content-Type": "text/plain"}, wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "form encoded", body: "customerId=U1", headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "empty body", body: "", wantStatus: 400, wantCode: "invalid", wantMsg: "empty"},
		{name: "malformed", body: `{"customerId":`, wantStatus: 400, wantCode: "invalid", wantMsg: "malformed JSON"},
		{name: "not an object", body: `[1]`, wantStatus: 400, wantCode: "invalid"},
		{name: "unknown field", body: with(`"customerId"`, `"coupon":"X","customerId"`), wantStatus: 400, wantCode: "invalid", wantMsg: `unknown field "coupon"`},
		{name: "wrong type", body: with(`"qty":2`, `"qty":"2"`), wantStatus: 400, wantCode: "invalid", wantMsg: `"items.qty" must be a whole number`},
		{name: "fractional qty", body: with(`"qty":2`, `"qty":1.5`), wantStatus: 400, wantCode: "invalid", wantMsg: "items.qty"},
		{name: "qty beyond int64", body: with(`"qty":2`, `"qty":9223372036854775808`), wantStatus: 400, wantCode: "invalid", wantMsg: "items.qty"},
		{name: "qty in exponent form", body: with(`"qty":2`, `"qty":1e3`), wantStatus: 400, wantCode: "invalid", wantMsg: "items.qty"},
		{name: "trailing data", body: validBody + `{}`, wantStatus: 400, wantCode: "invalid", wantMsg: "single JSON object"},
		{name: "over 64 KiB", body: with(`"U1"`, `"`+strings.Repeat("x", msghttp.MaxBodyBytes)+`"`), wantStatus: 413, wantCode: "too_large"},
		{name: "another customer", body: with(`"U1"`, `"U2"`), wantStatus: 403, wantCode: "forbidden", wantMsg: "not the customer of the token"},
		{name: "129-character customer", body: with(`"U1"`, `"`+strings.Repeat("x", 129)+`"`), wantStatus: 400, wantCode: "invalid", wantMsg: "customerId must be at most 128 characters"},
		{name: "escaped NUL in customer", body: with(`"U1"`, `"U\u00001"`), wantStatus: 400, wantCode: "invalid", wantMsg: "customerId must hold printable characters only"},
		{name: "no token", body: validBody, headers: map[string]string{"Authorization": ""}, wantStatus: 401, wantCode: "unauthorized"},
		{name: "bad currency", body: with(`"KRW"`, `"krw"`), wantStatus: 400, wantCode: "invalid", wantMsg: "currency must be 3 capital letters"},
		{name: "no token", body: with(`"tok_ok"`, `""`), wantStatus: 400, wantCode: "invalid", wantMsg: "paymentToken is required"},
		{name: "no items", body: items(0), wantStatus: 400, wantCode: "invalid", wantMsg: "items must hold at least 1 line"},
		{name: "51 lines", body: items(51), wantStatus: 400, wantCode: "invalid", wantMsg: "items must hold at most 50 lines"},
		{name: "empty sku", body: with(`"B200"`, `""`), wantStatus: 400, wantCode: "invalid", wantMsg: "items[1].sku"},
		{name: "duplicate sku", body: with(`"B200"`, `"A100"`), wantStatus: 400, wantCode: "invalid", wantMsg: "items[1].sku: A100 is already on line 0"},
		{name: "zero qty", body: with(`"qty":2`, `"qty":0`), wantStatus: 400, wantCode: "invalid", wantMsg: "items[0].qty must be from 1 to 10000"},
		{name: "qty over the bound", body: with(`"qty":2`, `"qty":9223372036854775807`), wantStatus: 400, wantCode: "invalid", wantMsg: "items[0].qty must be from 1 to 10000"},
		{name: "negative price", body: with(`"unitPrice":9000`, `"unitPrice":-1`), wantStatus: 400, wantCode: "invalid", wantMsg: "items[1].unitPrice must be from 0"},
		{name: "price over the bound", body: with(`"unitPrice":15000`, `"unitPrice":9223372036854775807`), wantStatus: 400, wantCode: "invalid", wantMsg: "items[0].unitPrice must be from 0"},
		{name: "long idempotency key", body: validBody, headers: map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, wantStatus: 400, wantCode: "invalid", wantMsg: "Idempotency-Key"},
		{name: "non-ASCII idempotency key", body: validBody, headers: map[string]string{"Idempotency-Key": "키"}, wantStatus: 400, wantCode: "invalid", wantMsg: "Idempotency-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := a.do(http.MethodPost, "/orders", tt.body, tt.headers)
			var got struct{ Error, Code string }
			if err := json.Unmarshal([]byte(body), &got); err != nil || h.Get("Content-Type") != "application/json" {
				t.Fatalf("error body %q (%s) is not the JSON error shape", body, h.Get("Content-Type"))
			}
			if status != tt.wantStatus || got.Code != tt.wantCode || !strings.Contains(got.Error, tt.wantMsg) {
				t.Fatalf("POST /orders = %d %s; want %d %s containing %q", status, body, tt.wantStatus, tt.wantCode, tt.wantMsg)
			}
		})
	}
	if got := a.written(); got != [4]int{} {
		t.Fatalf("rejected requests wrote (orders, items, timeline, outbox) = %v", got)
	}
}

func TestReadNotFound(t *testing.T) {
	a := newAPI(t)
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantCode           string
	}{
		{name: "unknown order", method: http.MethodGet, path: "/orders/" + uuid.NewString(), wantStatus: 404, wantCode: "not_found"},
		{name: "not a uuid", method: http.MethodGet, path: "/orders/42", wantStatus: 404, wantCode: "not_found"},
		{name: "uuid without dashes", method: http.MethodGet, path: "/orders/" + strings.ReplaceAll(uuid.NewString(), "-", ""), wantStatus: 404, wantCode: "not_found"},
		{name: "events of unknown order", method: http.MethodGet, path: "/orders/" + uuid.NewString() + "/events", wantStatus: 404, wantCode: "not_found"},
		{name: "events, not a uuid", method: http.MethodGet, path: "/orders/x/events", wantStatus: 404, wantCode: "not_found"},
		{name: "stream of unknown order", method: http.MethodGet, path: "/orders/" + uuid.NewString() + "/stream", wantStatus: 404, wantCode: "not_found"},
		{name: "unknown route", method: http.MethodGet, path: "/nope", wantStatus: 404, wantCode: "not_found"},
		{name: "wrong method", method: http.MethodDelete, path: "/orders/" + uuid.NewString(), wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "list orders is no route", method: http.MethodGet, path: "/orders", wantStatus: 405, wantCode: "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := a.do(tt.method, tt.path, "", nil)
			var got struct{ Error, Code string }
			if err := json.Unmarshal([]byte(body), &got); err != nil || status != tt.wantStatus || got.Code != tt.wantCode || got.Error == "" {
				t.Fatalf("%s %s = %d %s; want %d %s", tt.method, tt.path, status, body, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

// TestCreatedCounter: orders_created_total counts orders placed, not idempotent replays.
func TestCreatedCounter(t *testing.T) {
	a := newAPI(t)
	key := map[string]string{"Idempotency-Key": "count-me-once"}
	a.create(validBody, key)
	a.create(validBody, key)
	a.create(validBody, nil)
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "orders_created_total" {
			if got := mf.GetMetric()[0].GetCounter().GetValue(); got != 2 {
				t.Fatalf("orders_created_total = %v, want 2", got)
			}
			return
		}
	}
	t.Fatal("no orders_created_total")
}

// sse reads Server-Sent Events from a stream.
type sse struct {
	t   *testing.T
	res *http.Response
	r   *bufio.Reader
}

func (a *api) openStream(id string) *sse {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	a.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.srv.URL+"/orders/"+id+"/stream", nil)
	req.Header.Set("Authorization", a.bearer("U1"))
	res, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		a.t.Fatalf("stream = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return &sse{t: a.t, res: res, r: bufio.NewReader(res.Body)}
}

// next returns the next event's name and data, or io.EOF when the server ended the stream.
func (s *sse) next() (string, string, error) {
	var name, data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data, nil
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func (s *sse) wantStatus(want string) {
	s.t.Helper()
	name, data, err := s.next()
	if err != nil || name != "status" || !strings.Contains(data, `"status":"`+want+`"`) {
		s.t.Fatalf("next event = %q %s, %v; want status %s", name, data, err, want)
	}
}

func (s *sse) wantEnd() {
	s.t.Helper()
	if name, data, err := s.next(); err != io.EOF {
		s.t.Fatalf("after the terminal status: %q %s, %v; want the stream to end", name, data, err)
	}
}

func TestStream(t *testing.T) {
	a := newAPI(t)
	id := a.create(validBody, nil)
	s := a.openStream(id)
	s.wantStatus("PENDING")

	// The saga completes the order while the stream is open.
	complete := func() {
		err := msgpg.WithTx(context.Background(), a.db, func(tx *sql.Tx) error {
			_, err := ordertest.Change(context.Background(), tx, a.orders, a.events, uuid.MustParse(id), time.Now(), func(o *order.Order) (messaging.Event, bool) {
				return o.Complete(time.Now())
			})
			return err
		})
		if err != nil {
			t.Error(err)
		}
	}
	// The listener may still be connecting: keep the change coming until it is seen. A second
	// Complete is a no-op on the now terminal order.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() { close(stop); wg.Wait() }()
	wg.Go(func() {
		for {
			complete()
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	})
	s.wantStatus("COMPLETED")
	s.wantEnd()

	// A stream of an order that has ended sends its status and ends at once.
	s = a.openStream(id)
	s.wantStatus("COMPLETED")
	s.wantEnd()
}

// TestCustomersSeeOnlyTheirOrders: placing and reading orders take a customer token; an order is
// its token's customer's, and another customer finds nothing where it is (404, as for a missing
// order); an operator may read any order but place none.
func TestCustomersSeeOnlyTheirOrders(t *testing.T) {
	a := newAPI(t)
	mine := a.create(validBody, nil)
	// customerId may be left out: the token names the customer.
	implied := a.create(strings.Replace(validBody, `"customerId":"U1",`, "", 1), nil)
	_, _, body := a.do(http.MethodGet, "/orders/"+implied, "", nil)
	if !strings.Contains(body, `"customerId":"U1"`) {
		t.Fatalf("order placed without customerId = %s; want U1's", body)
	}
	missing := uuid.NewString()
	expired, err := customer.Sign(a.key, "U1", time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := customer.Sign(otherKey, "U1", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	operator := map[string]string{"Authorization": "Bearer " + adminToken}
	type authCase struct {
		name       string
		method     string
		path       string
		body       string
		headers    map[string]string
		wantStatus int
		wantCode   string
	}
	tests := []authCase{
		{name: "place, no token", method: "POST", path: "/orders", body: validBody, headers: a.as("", nil), wantStatus: 401, wantCode: "unauthorized"},
		{name: "place, expired token", method: "POST", path: "/orders", body: validBody, headers: map[string]string{"Authorization": "Bearer " + expired}, wantStatus: 401, wantCode: "unauthorized"},
		{name: "place, token of another key", method: "POST", path: "/orders", body: validBody, headers: map[string]string{"Authorization": "Bearer " + forged}, wantStatus: 401, wantCode: "unauthorized"},
		{name: "place, operator token", method: "POST", path: "/orders", body: validBody, headers: operator, wantStatus: 401, wantCode: "unauthorized"},
		{name: "place for another customer", method: "POST", path: "/orders", body: validBody, headers: a.as("U2", nil), wantStatus: 403, wantCode: "forbidden"},
		{name: "place, own", method: "POST", path: "/orders", body: validBody, headers: a.as("U1", nil), wantStatus: 202},
	}
	for _, read := range []string{"", "/events", "/stream", "/history", "?asOf=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))} {
		tests = append(tests,
			authCase{name: "read" + read + ", no token", method: "GET", path: "/orders/" + mine + read, headers: a.as("", nil), wantStatus: 401, wantCode: "unauthorized"},
			authCase{name: "read" + read + ", forged token", method: "GET", path: "/orders/" + mine + read, headers: map[string]string{"Authorization": "Bearer " + forged}, wantStatus: 401, wantCode: "unauthorized"},
			authCase{name: "read" + read + ", another customer's order", method: "GET", path: "/orders/" + mine + read, headers: a.as("U2", nil), wantStatus: 404, wantCode: "not_found"},
			authCase{name: "read" + read + ", a missing order", method: "GET", path: "/orders/" + missing + read, headers: a.as("U2", nil), wantStatus: 404, wantCode: "not_found"},
		)
		if read != "/stream" { // a stream of a PENDING order stays open
			tests = append(tests, authCase{name: "read" + read + ", operator", method: "GET", path: "/orders/" + mine + read, headers: operator, wantStatus: 200})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := a.do(tt.method, tt.path, tt.body, tt.headers)
			if status != tt.wantStatus || (tt.wantCode != "" && !strings.Contains(body, `"code":"`+tt.wantCode+`"`)) {
				t.Fatalf("%s %s = %d %s; want %d %s", tt.method, tt.path, status, body, tt.wantStatus, tt.wantCode)
			}
			if status == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	// Another customer's order answers exactly what a missing one does (but for the id).
	_, _, theirs := a.do(http.MethodGet, "/orders/"+mine, "", a.as("U2", nil))
	_, _, none := a.do(http.MethodGet, "/orders/"+missing, "", a.as("U2", nil))
	if strings.ReplaceAll(theirs, mine, missing) != none {
		t.Fatalf("another customer's order %q differs from a missing one %q", theirs, none)
	}
}

// TestOpenOrdersCap: a customer with MaxOpenOrders orders PENDING places no other until one ends
// (429 too_many_open_orders with Retry-After); replays and other customers are not held up.
func TestOpenOrdersCap(t *testing.T) {
	a := newAPIWith(t, func(c *app.Config, _ *httpapi.Config) { c.MaxOpenOrders = 2 })
	key := map[string]string{"Idempotency-Key": "first"}
	first := a.create(validBody, key)
	a.create(validBody, nil)
	status, h, body := a.do(http.MethodPost, "/orders", validBody, nil)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") != "1" || !strings.Contains(body, `"code":"too_many_open_orders"`) {
		t.Fatalf("third open order = %d Retry-After %q %s; want 429 too_many_open_orders, Retry-After 1", status, h.Get("Retry-After"), body)
	}
	if again := a.create(validBody, key); again != first {
		t.Fatalf("a replay over the cap answered %s, want %s", again, first)
	}
	a.create(strings.Replace(validBody, `"U1"`, `"U2"`, 1), a.as("U2", nil))
	if _, err := a.db.Exec(`UPDATE orders SET status = 'COMPLETED' WHERE id = $1`, first); err != nil {
		t.Fatal(err)
	}
	a.create(validBody, nil)
	if n := a.count(`SELECT count(*) FROM orders WHERE customer_id = 'U1'`); n != 3 {
		t.Fatalf("U1 has %d orders, want 3", n)
	}
}

// TestRateLimit: each customer has its own bucket; over it, 429 rate_limited with Retry-After.
// Operators are not limited.
func TestRateLimit(t *testing.T) {
	a := newAPIWith(t, func(_ *app.Config, c *httpapi.Config) { c.Rate = customer.NewLimiter(0.5, 2) })
	id := a.create(validBody, nil) // one from U1's bucket
	if status, _, body := a.do(http.MethodGet, "/orders/"+id, "", nil); status != http.StatusOK {
		t.Fatalf("second request = %d %s", status, body)
	}
	status, h, body := a.do(http.MethodGet, "/orders/"+id, "", nil)
	if status != http.StatusTooManyRequests || !strings.Contains(body, `"code":"rate_limited"`) {
		t.Fatalf("third request = %d %s; want 429 rate_limited", status, body)
	}
	if ra := h.Get("Retry-After"); ra != "1" && ra != "2" {
		t.Fatalf("Retry-After = %q; want the 1 to 2 s the bucket takes to refill", ra)
	}
	if status, _, body := a.do(http.MethodPost, "/orders", validBody, nil); status != http.StatusTooManyRequests {
		t.Fatalf("placing over the rate = %d %s; want 429", status, body)
	}
	if status, _, body := a.do(http.MethodGet, "/orders/"+id, "", a.as("U2", nil)); status != http.StatusNotFound {
		t.Fatalf("U2 = %d %s; want its own bucket (and 404)", status, body)
	}
	for range 3 {
		if status, _, body := a.do(http.MethodGet, "/orders/"+id, "", map[string]string{"Authorization": "Bearer " + adminToken}); status != http.StatusOK {
			t.Fatalf("operator = %d %s; want no limit", status, body)
		}
	}
}

// TestStreamLimits: the status streams open at once are capped (one more: 503 too_many_streams
// with Retry-After) and each ends after its lifetime, which frees its slot.
func TestStreamLimits(t *testing.T) {
	a := newAPIWith(t, func(_ *app.Config, c *httpapi.Config) { c.MaxStreams = 1; c.StreamLifetime = 700 * time.Millisecond })
	id := a.create(validBody, nil)
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"one more than the cap is refused", func(t *testing.T) {
			s := a.openStream(id)
			s.wantStatus("PENDING")
			req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/orders/"+id+"/stream", nil)
			req.Header.Set("Authorization", a.bearer("U1"))
			res, err := a.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"code":"too_many_streams"`) {
				t.Fatalf("a second stream = %d Retry-After %q %s, want 503 too_many_streams with Retry-After",
					res.StatusCode, res.Header.Get("Retry-After"), body)
			}
			start := time.Now()
			s.wantEnd() // the lifetime ends the stream of a PENDING order
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("the stream ended after %v, want about its lifetime", d)
			}
		}},
		{"the slot is free again", func(t *testing.T) {
			s := a.openStream(id)
			s.wantStatus("PENDING")
			s.wantEnd()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// TestHistoryAndAsOf: GET /orders/{id}/history lists the order's own events (seq, version, time,
// data with the token redacted); GET /orders/{id}?asOf= answers the order as it was then (404
// before it existed, 400 for a time that is not RFC 3339), the same shape as GET /orders/{id}.
func TestHistoryAndAsOf(t *testing.T) {
	a := newAPI(t)
	id := a.create(validBody, nil)
	placed := time.Now()
	time.Sleep(5 * time.Millisecond)
	err := msgpg.WithTx(context.Background(), a.db, func(tx *sql.Tx) error {
		_, err := ordertest.Change(context.Background(), tx, a.orders, a.events, uuid.MustParse(id), time.Now(), func(o *order.Order) (messaging.Event, bool) {
			return o.Cancel(order.ReasonOutOfStock, time.Now())
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	status, _, body := a.do(http.MethodGet, "/orders/"+id+"/history", "", nil)
	var h []order.HistoryEntry // its JSON as the service defines it; e2e checks the contract
	if err := json.Unmarshal([]byte(body), &h); err != nil || status != 200 {
		t.Fatalf("GET history = %d %s", status, body)
	}
	if len(h) != 2 || h[0].Seq != 1 || h[0].EventType != "OrderCreated" || h[1].Seq != 2 || h[1].EventType != "OrderCanceled" ||
		h[0].EventVersion < 1 || h[0].EventID == "" || h[0].OccurredAt.IsZero() {
		t.Fatalf("history = %s", body)
	}
	if strings.Contains(body, "tok_ok") {
		t.Errorf("the history shows the payment token: %s", body)
	}

	_, _, now := a.do(http.MethodGet, "/orders/"+id, "", nil)
	tests := []struct {
		name       string
		asOf       string
		wantStatus int
		wantIn     string // a part of the body
	}{
		{"before it existed", placed.Add(-time.Hour).Format(time.RFC3339), 404, `"code":"not_found"`},
		{"when placed", h[0].OccurredAt.Format(time.RFC3339Nano), 200, `"status":"PENDING"`},
		{"now", time.Now().Add(time.Second).Format(time.RFC3339Nano), 200, `"status":"CANCELED"`},
		{"not RFC 3339", "yesterday", 400, "asOf"},
		{"a date alone", "2026-12-07", 400, "asOf"},
		{"empty", "", 400, "asOf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := a.do(http.MethodGet, "/orders/"+id+"?asOf="+url.QueryEscape(tt.asOf), "", nil)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantIn) {
				t.Fatalf("asOf=%s: %d %s; want %d with %s", tt.asOf, status, body, tt.wantStatus, tt.wantIn)
			}
			if tt.name == "now" && body != now {
				t.Errorf("as of now:\n %s\nnow:\n %s", body, now)
			}
		})
	}
}

// TestChannel: OrderCreated v2 carries the channel the request names (web, app, api; none: api);
// another value is a 400 naming the field.
func TestChannel(t *testing.T) {
	a := newAPI(t)
	tests := []struct {
		channel    string
		want       order.Channel
		wantStatus int
	}{
		{"", order.ChannelAPI, 202},
		{"web", order.ChannelWeb, 202},
		{"app", order.ChannelApp, 202},
		{"api", order.ChannelAPI, 202},
		{"fax", "", 400},
		{"WEB", "", 400},
	}
	v1 := newAPIWith(t, func(c *app.Config, _ *httpapi.Config) { c.CreatedVersion = 1 })
	for _, tt := range tests {
		t.Run(tt.channel, func(t *testing.T) {
			body := strings.Replace(validBody, `"currency"`, `"channel":"`+tt.channel+`","currency"`, 1)
			status, _, resp := a.do(http.MethodPost, "/orders", body, nil)
			if status != tt.wantStatus {
				t.Fatalf("POST /orders with channel %q = %d %s, want %d", tt.channel, status, resp, tt.wantStatus)
			}
			if status != 202 {
				if !strings.Contains(resp, "channel") {
					t.Errorf("the 400 does not name the field: %s", resp)
				}
				return
			}
			var got struct{ OrderID string }
			if err := json.Unmarshal([]byte(resp), &got); err != nil {
				t.Fatal(err)
			}
			var data []byte
			if err := a.db.QueryRow(`SELECT payload::jsonb->'data' FROM order_events WHERE order_id = $1 AND seq = 1`, got.OrderID).Scan(&data); err != nil {
				t.Fatal(err)
			}
			var d order.CreatedData
			if err := json.Unmarshal(data, &d); err != nil || d.Channel != tt.want {
				t.Fatalf("OrderCreated data %s, want channel %s", data, tt.want)
			}
			if n := a.count(`SELECT count(*) FROM orders WHERE id = $1 AND channel = $2`, got.OrderID, string(tt.want)); n != 1 {
				t.Errorf("the projection does not hold channel %s", tt.want)
			}
			// ORDER_CREATED_VERSION=1 (consumers not upgraded yet): v1, no channel.
			got.OrderID = v1.create(body, nil)
			var version int
			if err := v1.db.QueryRow(`SELECT event_version, payload::jsonb->'data' FROM order_events WHERE order_id = $1 AND seq = 1`, got.OrderID).
				Scan(&version, &data); err != nil {
				t.Fatal(err)
			}
			if version != 1 || strings.Contains(string(data), "channel") {
				t.Errorf("with CreatedVersion 1: v%d %s, want v1 without channel", version, data)
			}
		})
	}
}

// TestCreateSoldOut: a SKU the service knows is sold out (it heard StockDepleted) is refused at
// once, 409 {"code":"sold_out","sku":...}, through the one error mapping, and nothing is written:
// no order, no saga. Once it is back (StockReplenished) the same request is placed.
func TestCreateSoldOut(t *testing.T) {
	a := newAPI(t)
	setSoldOut := func(soldOut bool) {
		t.Helper()
		if _, err := a.db.Exec(`INSERT INTO sku_availability (sku, sold_out, as_of) VALUES ('B200', $1, now())
			ON CONFLICT (sku) DO UPDATE SET sold_out = EXCLUDED.sold_out, as_of = EXCLUDED.as_of`, soldOut); err != nil {
			t.Fatal(err)
		}
	}
	setSoldOut(true)
	before := a.written()
	status, _, body := a.do(http.MethodPost, "/orders", validBody, nil)
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if status != http.StatusConflict || got["code"] != "sold_out" || got["sku"] != "B200" {
		t.Fatalf("POST /orders with a sold-out SKU = %d %s, want 409 sold_out sku B200", status, body)
	}
	if after := a.written(); after != before {
		t.Errorf("a refused order wrote %v, want %v", after, before)
	}
	setSoldOut(false)
	a.create(validBody, nil)
}
