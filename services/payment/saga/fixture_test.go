package saga

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
	"outboxsaga.dev/payment"
	"outboxsaga.dev/payment/gatewayhttp"
	"outboxsaga.dev/payment/postgres"
	"outboxsaga.dev/schemas"
)

// fixture is a migrated test database, the gateway simulator in-process behind switches that
// make it fail or lie, and the saga steps wired to both.
type fixture struct {
	t           *testing.T
	db          *sql.DB
	steps       *Steps
	ledger      *gatewaysim.Ledger
	validator   *schemas.Validator
	deadLetters *msgpg.DeadLetters
	// chargesDown and voidsDown make the gateway answer 503 (recording nothing).
	chargesDown atomic.Bool
	voidsDown   atomic.Bool
	// lie, when set, rewrites the fields of the gateway's JSON answers to the paths it names
	// (what the simulator did stays as it did it): a gateway that answers about another charge.
	lie    atomic.Pointer[map[string]map[string]any]
	offset atomic.Int64
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
	f := &fixture{t: t, db: pgtest.MustOpenTestDB(t)}
	ctx := context.Background()
	if err := msgpg.MigrateService(ctx, f.db, "payment", postgres.Migrations); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	pgtest.CaptureOutbox(t, f.db)

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
	metrics := NewMetrics(reg)
	outbox := pgtest.MustOutbox(t)
	f.deadLetters = msgpg.NewDeadLetters(f.db, outbox)
	f.steps = New(f.db, postgres.NewPayments(f.db), outbox, Alerts{DeadLetters: f.deadLetters, Service: "payment"}, gw, metrics)
	f.validator, err = schemas.New()
	if err != nil {
		t.Fatal(err)
	}
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

// message builds a raw Kafka message as the consumer hands it to its chain: value, key, headers,
// and the traceparent parsed from the headers; the envelope is still undecoded.
func (f *fixture) message(t *testing.T, topic, aggregateType, eventType, orderID string, data any) *messaging.Message {
	t.Helper()
	tp := messaging.NewTraceparent()
	env, err := messaging.NewEnvelope(aggregateType, orderID, eventType, 1, data, tp)
	if err != nil {
		t.Fatal(err)
	}
	value, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return &messaging.Message{
		Traceparent: tp,
		Record:      messaging.Record{Topic: topic, Offset: f.offset.Add(1), Key: orderID, Headers: map[string]string{"id": env.EventID, "eventType": eventType, "traceparent": tp.String()}, Value: value},
	}
}

func (f *fixture) stockReserved(t *testing.T, orderID, token string) *messaging.Message {
	return f.message(t, messaging.TopicInventory, "inventory", "StockReserved", orderID, map[string]any{
		"orderId": orderID, "items": items, "amount": 39000, "currency": "KRW", "paymentToken": token,
	})
}

func (f *fixture) orderCanceled(t *testing.T, orderID string) *messaging.Message {
	return f.message(t, messaging.TopicOrder, "order", "OrderCanceled", orderID, map[string]any{
		"orderId": orderID, "reason": "TIMEOUT", "items": items,
	})
}

// ctx is the context of a delivery: it carries the test's logger, as the consumer's carries the
// message's.
func (f *fixture) ctx() context.Context {
	return zerolog.New(zerolog.NewTestWriter(f.t)).WithContext(context.Background())
}

// deliver runs a copy of raw through the consumer's decoding and the Router, as the consumer
// would on every (re)delivery.
func (f *fixture) deliver(raw *messaging.Message) error {
	m := *raw
	return messaging.Chain(f.steps.Router().Dispatch, kafka.Decode(f.validator))(f.ctx(), &m)
}

// decoded returns raw decoded, for calling single steps.
func (f *fixture) decoded(t *testing.T, raw *messaging.Message) *messaging.Message {
	t.Helper()
	var got *messaging.Message
	err := kafka.Decode(f.validator)(func(_ context.Context, m *messaging.Message) error {
		got = m
		return nil
	})(context.Background(), new(*raw))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// admitted runs step 1 of StockReserved alone for o1 with tok_ok, as a crash right after it
// would leave things: it returns the raw event, the decoded one and the payment to charge.
func (f *fixture) admitted(t *testing.T) (raw, m *messaging.Message, p payment.Payment) {
	t.Helper()
	raw = f.stockReserved(t, o1, "tok_ok")
	m = f.decoded(t, raw)
	p, charge, err := f.steps.admit(f.ctx(), m, payment.Terms{OrderID: o1, Amount: 39000, Currency: "KRW", Token: "tok_ok"})
	if err != nil || !charge {
		t.Fatalf("admit = %v, %v; want a charge", charge, err)
	}
	return raw, m, p
}

func (f *fixture) mustDeliver(t *testing.T, raw *messaging.Message) {
	t.Helper()
	if err := f.deliver(raw); err != nil {
		t.Fatalf("deliver %s: %v", raw.Headers["eventType"], err)
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

// processed reports whether raw's event id is in the inbox.
func (f *fixture) processed(t *testing.T, raw *messaging.Message) bool {
	t.Helper()
	var n int
	if err := f.db.QueryRow(`SELECT count(*) FROM processed_events WHERE event_id = $1`, raw.Headers["id"]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

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
