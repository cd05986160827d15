package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/notification"
	"outboxsaga.dev/notification/postgres"
	"outboxsaga.dev/notification/saga"
	"outboxsaga.dev/notification/webhook"
	"outboxsaga.dev/schemas"
	"outboxsaga.dev/webhooksink/httpapi"
	"outboxsaga.dev/webhooksink/sinktest"
)

// fixture is a migrated test database, the webhook sink in-process, and the two chains the
// service runs over its Router (kafka.Handlers): consume (retry, dead letters) and replay
// (neither: a failure comes back at once).
type fixture struct {
	db              *sql.DB
	sink            *sinktest.Sink
	sent            *postgres.Sent
	reg             *prometheus.Registry
	consume, replay messaging.Handler
	offset          atomic.Int64
}

func newFixture(t *testing.T, sink httpapi.Config) *fixture {
	t.Helper()
	f := &fixture{db: pgtest.MustOpenTestDB(t), sink: sinktest.Start(t, sink), reg: prometheus.NewRegistry()}
	if err := msgpg.MigrateService(context.Background(), f.db, notification.Service, postgres.Migrations); err != nil {
		t.Fatal(err)
	}
	pgtest.CaptureOutbox(t, f.db)
	validator, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	hook, err := webhook.New(webhook.Config{URL: f.sink.URL + "/hooks", Secret: sinktest.Secret, Timeout: time.Second, Attempts: 3, Backoff: time.Millisecond}, f.reg)
	if err != nil {
		t.Fatal(err)
	}
	f.sent = postgres.NewSent(f.db)
	f.consume, f.replay = kafka.Handlers(saga.New(f.db, f.sent, hook, f.reg).Router().Dispatch, kafka.HandlerConfig{
		Service: notification.Service, Validator: validator, DeadLetters: msgpg.NewDeadLetters(f.db, pgtest.MustOutbox(t)),
		MaxAttempts: 2, Log: zerolog.Nop(), Registry: prometheus.NewRegistry(),
		Unavailable: func(err error) bool { return msgpg.IsUnavailable(err) || messaging.IsOutage(err) },
	})
	return f
}

// record is the Kafka record of a new event of aggregateType about key, on its topic.
func (f *fixture) record(t *testing.T, aggregateType, eventType, key string, data any) messaging.Record {
	t.Helper()
	env, err := messaging.NewEnvelope(aggregateType, key, eventType, 1, data, messaging.NewTraceparent())
	if err != nil {
		t.Fatal(err)
	}
	value, _ := json.Marshal(env)
	return messaging.Record{Topic: messaging.TopicOf(aggregateType), Offset: f.offset.Add(1), Key: key, Value: value}
}

// deliver hands r to the chain h as the consumer does: a fresh, undecoded Message per delivery.
func deliver(h messaging.Handler, r messaging.Record) error {
	return h(context.Background(), &messaging.Message{Record: r})
}

// eventID is the event id of r.
func eventID(r messaging.Record) string {
	var env messaging.Envelope
	_ = json.Unmarshal(r.Value, &env)
	return env.EventID
}

var items = []map[string]any{{"sku": "A100", "qty": 1, "unitPrice": 15000}}

// counter is the sum of the counter name's series in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range families {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
