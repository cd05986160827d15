// Package sagatest is the test kit of the saga steps: build the Kafka record of an event
// (Event), deliver it through the consumer's decoding (schemas validated, upcast) and a
// service's Router as the consumer would (Harness.Deliver, DeliverBatch, or the whole chain with
// retries and dead letters: Consumer), and read what the steps emitted (Harness.Emitted, the
// captured outbox of messaging/postgres/pgtest). Tests run against a database of their own
// (Open: pgtest's fresh database, migrated, its outbox captured).
package sagatest

import (
	"context"
	"database/sql"
	"encoding/json"
	"hash/fnv"
	"io/fs"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/schemas"
)

// Record is the Kafka record of one event as Debezium's outbox router puts it on its topic:
// the envelope's JSON as value, the aggregate id as key, the event id, type and traceparent as
// headers. Envelope and Traceparent are what it was built from.
type Record struct {
	messaging.Record
	Envelope    messaging.Envelope
	Traceparent messaging.Traceparent
}

// Event returns the record of a new event (a new event id, in a new trace) of aggregateType about
// key, at version, with data, on its aggregate type's topic (messaging.TopicOf). Its offset is
// derived from its event id, so that each record has its own (dead letters are kept per record)
// and a redelivery has the same.
func Event(tb testing.TB, aggregateType, eventType string, version int, key string, data any) Record {
	tb.Helper()
	tp := messaging.NewTraceparent()
	env, err := messaging.NewEnvelope(aggregateType, key, eventType, version, data, tp)
	if err != nil {
		tb.Fatalf("envelope of %s: %v", eventType, err)
	}
	value, err := json.Marshal(env)
	if err != nil {
		tb.Fatalf("envelope of %s: %v", eventType, err)
	}
	h := fnv.New64a()
	h.Write([]byte(env.EventID))
	return Record{
		Record: messaging.Record{
			Topic: messaging.TopicOf(aggregateType), Offset: int64(h.Sum64() >> 1), Key: key, Value: value,
			Headers: map[string]string{"id": env.EventID, "eventType": eventType, "traceparent": tp.String()},
		},
		Envelope:    env,
		Traceparent: tp,
	}
}

// Message returns r as the consumer hands it to its chain: a new message, not decoded yet (each
// delivery decodes its own).
func (r Record) Message() *messaging.Message {
	return &messaging.Message{Record: r.Record, Traceparent: r.Traceparent}
}

// Open returns a fresh database of the test's own (pgtest.MustOpenTestDB) with the shared
// migrations and service's (migrations holds a migrations/ directory, as a service's
// postgres.Migrations), its outbox captured (pgtest.CaptureOutbox).
func Open(tb testing.TB, service string, migrations fs.FS) *sql.DB {
	tb.Helper()
	db := pgtest.MustOpenTestDB(tb)
	db.SetMaxOpenConns(20) // every test database together has about 100 connections
	if err := msgpg.MigrateService(context.Background(), db, service, migrations); err != nil {
		tb.Fatalf("migrate %s: %v", service, err)
	}
	pgtest.CaptureOutbox(tb, db)
	return db
}

// Harness delivers records to a service's Router over its test database.
type Harness struct {
	tb        testing.TB
	DB        *sql.DB
	Router    *messaging.Router
	Validator *schemas.Validator
	handle    messaging.Handler
}

// New returns the harness of router over db: its chain is the consumer's decoding (with the
// router's key, Router.Keyed), then the router; no retry, no dead letters.
func New(tb testing.TB, db *sql.DB, router *messaging.Router) *Harness {
	tb.Helper()
	v, err := schemas.New()
	if err != nil {
		tb.Fatalf("load schemas: %v", err)
	}
	return &Harness{tb: tb, DB: db, Router: router, Validator: v,
		handle: messaging.Chain(router.Dispatch, kafka.DecodeKeyed(v, router.Keyed()))}
}

// Handler returns the harness's chain, decoding then the router, for code that hands messages
// over itself (kafka.HandleBatch with a done callback, several goroutines).
func (h *Harness) Handler() messaging.Handler { return h.handle }

// Ctx returns the context of a delivery: it carries a logger that writes to the test's log, as
// the consumer's carries the message's.
func (h *Harness) Ctx() context.Context {
	return zerolog.New(zerolog.NewTestWriter(h.tb)).WithContext(context.Background())
}

// Deliver hands r to the chain as the consumer does outside a batch, and returns its error as is
// (classified by the Router: messaging.IsPermanent for poison).
func (h *Harness) Deliver(r Record) error {
	return h.handle(h.Ctx(), r.Message())
}

// MustDeliver delivers each of rs in turn and fails the test at the first error.
func (h *Harness) MustDeliver(rs ...Record) {
	h.tb.Helper()
	for _, r := range rs {
		if err := h.Deliver(r); err != nil {
			h.tb.Fatalf("deliver %s: %v", r.Envelope.EventType, err)
		}
	}
}

// DeliverBatch hands rs to the chain as a consumer with a batch size does: consecutive messages
// of one partition (kafka.HandleBatch over msgpg.Batches of the harness's database), in one
// transaction as far as their handlers join batches.
func (h *Harness) DeliverBatch(rs ...Record) error {
	ms := make([]*messaging.Message, len(rs))
	for i, r := range rs {
		ms[i] = r.Message()
		ms[i].Offset = int64(i)
	}
	return kafka.HandleBatch(h.Ctx(), h.handle, msgpg.Batches(h.DB), ms, nil)
}

// MustDeliverBatch is DeliverBatch that fails the test on an error.
func (h *Harness) MustDeliverBatch(rs ...Record) {
	h.tb.Helper()
	if err := h.DeliverBatch(rs...); err != nil {
		h.tb.Fatalf("deliver a batch of %d: %v", len(rs), err)
	}
}

// Consumer returns the two chains the service runs over its router (kafka.Handlers): consume,
// with retries (an outage, msgpg.IsUnavailable or messaging.IsOutage, does not count against
// maxAttempts) and dead letters stored in the harness's database as service's; and replay,
// without either.
func (h *Harness) Consumer(service string, maxAttempts int) (consume, replay messaging.Handler) {
	h.tb.Helper()
	return kafka.Handlers(h.Router.Dispatch, kafka.HandlerConfig{
		Service: service, Validator: h.Validator, DeadLetters: msgpg.NewDeadLetters(h.DB, pgtest.MustOutbox(h.tb)),
		MaxAttempts: maxAttempts, Keyed: h.Router.Keyed(), Log: zerolog.Nop(), Registry: prometheus.NewRegistry(),
		Unavailable: func(err error) bool { return msgpg.IsUnavailable(err) || messaging.IsOutage(err) },
	})
}

// Emitted returns the events the steps wrote about key ("" for all), in order, each checked
// (pgtest.Emitted: schema, row, trace).
func (h *Harness) Emitted(key string) []pgtest.Event {
	h.tb.Helper()
	return pgtest.Emitted(h.tb, h.DB, key)
}

// EmittedTypes returns the types of Emitted(key), in order.
func (h *Harness) EmittedTypes(key string) []string {
	h.tb.Helper()
	return pgtest.Types(h.Emitted(key))
}

// Processed reports whether r's event is in the inbox.
func (h *Harness) Processed(r Record) bool {
	h.tb.Helper()
	return pgtest.Count(h.tb, h.DB, `SELECT count(*) FROM processed_events WHERE event_id = $1`, r.Envelope.EventID) == 1
}
