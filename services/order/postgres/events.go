package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
)

// Events is the order's event store, order_events: the order's own events, appended with a
// per-order seq and never changed. Debezium streams it to order-events, so it is also the order
// service's outbox (docs/architecture.md, "The order is event-sourced").
type Events struct {
	db     *sql.DB
	outbox *msgpg.Outbox
	up     order.Upcaster
}

// NewEvents returns the event store in db; outbox checks each event (schema, size) as it checks
// an outbox row, and up upcasts what is read (nil: nothing).
func NewEvents(db *sql.DB, outbox *msgpg.Outbox, up order.Upcaster) *Events {
	return &Events{db: db, outbox: outbox, up: up}
}

// Upcaster is the upcaster the store folds with.
func (s *Events) Upcaster() order.Upcaster { return s.up }

// Append writes d to the event store in tx, checked as the outbox checks a row (schema, size). When another writer appended the order's event of
// the same seq first, the error is a fault.Conflict (order.CodeConcurrentWrite) and tx is spent: the
// caller's transaction rolls back (a consumer retries it, a request answers 409).
func (s *Events) Append(ctx context.Context, tx *sql.Tx, d order.Decided) (err error) {
	tp, end := s.outbox.Span(ctx, d.Envelope, d.Traceparent)
	defer func() { end(err) }()
	payload, err := s.outbox.Payload(d.Envelope, tp)
	if err != nil {
		return fmt.Errorf("append %s to order %s: %w", d.Envelope.EventType, d.State.ID, err)
	}
	meta, err := json.Marshal(d.Record.Meta)
	if err != nil {
		return fmt.Errorf("append %s to order %s: %w", d.Envelope.EventType, d.State.ID, err)
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO order_events (id, aggregatetype, aggregateid, type, payload, traceparent, order_id, seq, event_version,
			occurred_at, meta)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		d.Envelope.EventID, d.Envelope.AggregateType, d.Envelope.AggregateID, d.Envelope.EventType, string(payload),
		tp.String(), d.State.ID, d.Record.Seq, d.Envelope.EventVersion, d.Envelope.OccurredAt, string(meta))
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" && pqErr.Constraint == "order_events_order_seq" {
		return fault.Reasoned(fault.Conflict, order.CodeConcurrentWrite,
			"order %s changed meanwhile (event %d was appended by another writer); try again", d.State.ID, d.Record.Seq)
	}
	if err != nil {
		return fmt.Errorf("append %s to order %s: %w", d.Envelope.EventType, d.State.ID, err)
	}
	return nil
}

// History returns the own events of order id in seq order, as stored (each at its own version),
// payment tokens redacted; the error is a fault.NotFound when the order has none.
func (s *Events) History(ctx context.Context, id uuid.UUID) ([]order.HistoryEntry, error) {
	recs, err := s.stream(ctx, s.db, id, nil)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fault.Errorf(fault.NotFound, "order %s not found", id)
	}
	out := make([]order.HistoryEntry, len(recs))
	for i, r := range recs {
		out[i] = order.HistoryEntry{Seq: r.Seq, EventID: r.EventID, EventType: r.EventType, EventVersion: r.EventVersion,
			OccurredAt: r.OccurredAt, Data: messaging.Redact(r.Data)}
	}
	return out, nil
}

// AsOf returns order id as it was at t: its own events that occurred at or before t and the
// delivery facts it recorded by then, folded. The error is a fault.NotFound when the order did
// not exist yet (or never did).
func (s *Events) AsOf(ctx context.Context, id uuid.UUID, t time.Time) (order.Order, error) {
	var o order.Order
	err := msgpg.WithTx(ctx, s.db, func(tx *sql.Tx) error {
		// One snapshot for both reads.
		if _, err := tx.ExecContext(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`); err != nil {
			return err
		}
		own, err := s.stream(ctx, tx, id, &t)
		if err != nil {
			return err
		}
		facts, err := deliveryFacts(ctx, tx, id, &t)
		if err != nil {
			return err
		}
		o, err = order.Fold(order.Merge(own, facts), s.up)
		return err
	})
	if fault.Code(err) == fault.NotFound {
		return order.Order{}, fault.Errorf(fault.NotFound, "order %s not found as of %s", id, t.UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		return order.Order{}, fmt.Errorf("order %s as of %s: %w", id, t.UTC().Format(time.RFC3339Nano), err)
	}
	return o, nil
}

// stream reads the own events of order id in seq order, those that occurred at or before *until
// (nil: all).
func (s *Events) stream(ctx context.Context, q querier, id uuid.UUID, until *time.Time) ([]order.Recorded, error) {
	var bound any
	if until != nil {
		bound = *until
	}
	rows, err := q.QueryContext(ctx, `SELECT seq, payload, meta FROM order_events
		WHERE order_id = $1 AND ($2::timestamptz IS NULL OR occurred_at <= $2) ORDER BY seq`, id, bound)
	if err != nil {
		return nil, fmt.Errorf("read events of order %s: %w", id, err)
	}
	defer rows.Close()
	var out []order.Recorded
	for rows.Next() {
		var (
			seq           int
			payload, meta []byte
		)
		if err := rows.Scan(&seq, &payload, &meta); err != nil {
			return nil, fmt.Errorf("read events of order %s: %w", id, err)
		}
		r, err := decodeRecorded(seq, payload, meta)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events of order %s: %w", id, err)
	}
	return out, nil
}

// decodeRecorded reads one stored event: its envelope (the payload) and its meta.
func decodeRecorded(seq int, payload, meta []byte) (order.Recorded, error) {
	var env messaging.Envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return order.Recorded{}, fmt.Errorf("decode stored event %d: %w", seq, err)
	}
	r := order.Recorded{Seq: seq, EventID: env.EventID, EventType: env.EventType, EventVersion: env.EventVersion,
		OccurredAt: env.OccurredAt.UTC(), TraceID: env.TraceID, Data: env.Data}
	if err := json.Unmarshal(meta, &r.Meta); err != nil {
		return order.Recorded{}, fmt.Errorf("decode meta of stored event %s: %w", env.EventID, err)
	}
	r.Meta.DeadlineAt = r.Meta.DeadlineAt.UTC()
	return r, nil
}

// deliveryFacts reads the delivery events order id recorded in its timeline (at or before *until;
// nil: all), as facts for the fold (Seq 0, at the time they were recorded).
func deliveryFacts(ctx context.Context, q querier, id uuid.UUID, until *time.Time) ([]order.Recorded, error) {
	var bound any
	if until != nil {
		bound = *until
	}
	rows, err := q.QueryContext(ctx, `SELECT event_id, event_type, recorded_at FROM order_timeline
		WHERE order_id = $1 AND event_type = ANY($2) AND ($3::timestamptz IS NULL OR recorded_at <= $3) ORDER BY seq`,
		id, pq.Array(order.DeliveryEventTypes()), bound)
	if err != nil {
		return nil, fmt.Errorf("read delivery facts of order %s: %w", id, err)
	}
	defer rows.Close()
	var out []order.Recorded
	for rows.Next() {
		var r order.Recorded
		if err := rows.Scan(&r.EventID, &r.EventType, &r.OccurredAt); err != nil {
			return nil, fmt.Errorf("read delivery facts of order %s: %w", id, err)
		}
		r.OccurredAt = r.OccurredAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read delivery facts of order %s: %w", id, err)
	}
	return out, nil
}
