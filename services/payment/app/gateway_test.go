package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/gatewaysim"
	simhttp "outboxsaga.dev/gatewaysim/httpapi"
	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/sagatest"
	"outboxsaga.dev/payment"
	"outboxsaga.dev/payment/app"
	"outboxsaga.dev/payment/gatewayhttp"
	"outboxsaga.dev/payment/postgres"
	"outboxsaga.dev/payment/saga"
)

// fixture is a migrated test database, the gateway simulator in-process behind switches that
// make it fail or lie, and the use cases and the saga steps wired to both.
type fixture struct {
	*sagatest.Harness
	t           *testing.T
	db          *sql.DB
	app         *app.App
	steps       *saga.Steps
	ledger      *gatewaysim.Ledger
	deadLetters *msgpg.DeadLetters
	// chargesDown and voidsDown make the gateway answer 503 (recording nothing).
	chargesDown atomic.Bool
	voidsDown   atomic.Bool
	// lie, when set, rewrites the fields of the gateway's JSON answers to the paths it names
	// (what the simulator did stays as it did it): a gateway that answers about another charge.
	lie atomic.Pointer[map[string]map[string]any]
	// release lets the tok_timeout charges that the gateway holds land (options.hold).
	release func()
}

// simSecret is the merchant secret of the fixture's simulator.
const simSecret = "merchant-secret-of-the-saga-tests"

// options tune the simulator and the gateway client of a fixture.
type options struct {
	// hold makes the gateway hold every tok_timeout charge until the test calls release (or
	// ends); without it, tok_timeout approves after a second.
	hold           bool
	clientTimeout  time.Duration
	clientAttempts int
	// clientSecret replaces the merchant secret the client sends (the simulator's by default).
	clientSecret string
}

func newFixture(t *testing.T, o options) *fixture {
	t.Helper()
	f := &fixture{t: t, db: sagatest.Open(t, "payment", postgres.Migrations)}

	simCfg := gatewaysim.Config{TimeoutDelay: time.Second, FlakyFailures: 2}
	if o.hold {
		held := make(chan time.Time)
		simCfg.After = func(time.Duration) <-chan time.Time { return held }
		f.release = sync.OnceFunc(func() { close(held) })
		t.Cleanup(f.release)
	}
	f.ledger = gatewaysim.NewLedger(simCfg)
	sim, err := simhttp.NewHandler(f.ledger, simSecret, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.URL.Path == "/charges" && f.chargesDown.Load()) || (r.URL.Path == "/charges/void" && f.voidsDown.Load()) {
			http.Error(w, `{"error":"down","code":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		lies := f.lie.Load()
		if lies == nil || (*lies)[r.URL.Path] == nil {
			sim.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("the simulator's answer %s: %v", rec.Body, err)
		}
		for k, v := range (*lies)[r.URL.Path] {
			body[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)

	reg := prometheus.NewRegistry()
	gw, err := gatewayhttp.New(gatewayhttp.Config{
		URL:      srv.URL,
		Timeout:  cmpOr(o.clientTimeout, 2*time.Second),
		Attempts: cmpOr(o.clientAttempts, 4),
		Backoff:  5 * time.Millisecond,
		Secret:   cmpOr(o.clientSecret, simSecret),
	}, reg)
	if err != nil {
		t.Fatal(err)
	}
	metrics := app.NewMetrics(reg)
	outbox := pgtest.MustOutbox(t)
	f.deadLetters = msgpg.NewDeadLetters(f.db, outbox)
	f.app = app.New(f.db, postgres.NewPayments(f.db), outbox, app.Alerts{DeadLetters: f.deadLetters, Service: "payment"}, gw, metrics)
	f.steps = saga.New(f.db, f.app)
	f.Harness = sagatest.New(t, f.db, f.steps.Router())
	return f
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

var items = []map[string]any{{"sku": "A100", "qty": 1, "unitPrice": 39000}}

// record is the Kafka record of an event.
type record = sagatest.Record

// event is the record of a new event of aggregateType about orderID, on its topic.
func event(t *testing.T, aggregateType, eventType, orderID string, data any) record {
	t.Helper()
	return sagatest.Event(t, aggregateType, eventType, 1, orderID, data)
}

func (f *fixture) stockReserved(t *testing.T, orderID, token string) record {
	return event(t, "inventory", "StockReserved", orderID, map[string]any{
		"orderId": orderID, "items": items, "amount": 39000, "currency": "KRW", "paymentToken": token,
	})
}

func (f *fixture) orderCanceled(t *testing.T, orderID string) record {
	return event(t, "order", "OrderCanceled", orderID, map[string]any{
		"orderId": orderID, "reason": "TIMEOUT", "items": items,
	})
}

// deliver runs r through the consumer's decoding and the Router, as the consumer would on
// every (re)delivery.
func (f *fixture) deliver(r record) error { return f.Deliver(r) }

// decoded returns r decoded, for calling single steps.
func (f *fixture) decoded(t *testing.T, r record) *messaging.Message {
	t.Helper()
	var got *messaging.Message
	err := kafka.Decode(f.Validator)(func(_ context.Context, m *messaging.Message) error {
		got = m
		return nil
	})(context.Background(), r.Message())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// admitted runs step 1 of StockReserved alone for o1 with tok_ok, as a crash right after it
// would leave things: it returns the raw event, the decoded one and the payment to charge.
func (f *fixture) admitted(t *testing.T) (raw record, m *messaging.Message, p payment.Payment) {
	t.Helper()
	raw = f.stockReserved(t, o1, "tok_ok")
	m = f.decoded(t, raw)
	p, charge, err := f.app.Admit(f.Ctx(), m, payment.Terms{OrderID: o1, Amount: 39000, Currency: "KRW", Token: "tok_ok"})
	if err != nil || !charge {
		t.Fatalf("admit = %v, %v; want a charge", charge, err)
	}
	return raw, m, p
}

func (f *fixture) mustDeliver(t *testing.T, r record) {
	t.Helper()
	if err := f.deliver(r); err != nil {
		t.Fatalf("deliver %s: %v", r.Envelope.EventType, err)
	}
}

// payment returns the stored payment of orderID (status "" when there is none).
func (f *fixture) payment(t *testing.T, orderID string) payment.Payment {
	t.Helper()
	p, err := postgres.NewPayments(f.db).Get(context.Background(), orderID)
	if err != nil && fault.Code(err) != fault.NotFound {
		t.Fatal(err)
	}
	return p
}

// processed reports whether r's event id is in the inbox.
func (f *fixture) processed(_ *testing.T, r record) bool { return f.Processed(r) }

// lieOn makes the gateway's answers to path carry fields instead of its own (nil: tell the
// truth again).
func (f *fixture) lieOn(path string, fields map[string]any) {
	if fields == nil {
		f.lie.Store(nil)
		return
	}
	f.lie.Store(&map[string]map[string]any{path: fields})
}

// charges returns the statuses of orderID's charges at the gateway.
func (f *fixture) charges(orderID string) []gatewaysim.Status {
	var out []gatewaysim.Status
	for _, c := range f.ledger.List(orderID) {
		out = append(out, c.Status)
	}
	return out
}
