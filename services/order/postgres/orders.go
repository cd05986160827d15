package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/order"
)

// StatusChannel is the LISTEN/NOTIFY channel on which every status change of an order is
// announced, with the order id as payload, in the transaction that makes the change.
const StatusChannel = "order_status"

// Orders is the order repository.
type Orders struct{ db *sql.DB }

// NewOrders returns the repository of the orders in db.
func NewOrders(db *sql.DB) *Orders { return &Orders{db: db} }

// querier is what reads need from a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const orderColumns = `id, customer_id, status, reason, coalesce(delivery, ''), currency, amount, payment_token, trace_id,
	created_at, updated_at, deadline_at, channel, version, coalesce(idempotency_key, ''), request_hash`

// Insert writes the projection of the new order o (the fold of its OrderCreated) with its items
// in tx. It returns false, and writes nothing, when
// o's customer used idem.Key for another order already (committed, or committed by a concurrent
// transaction this one waited for); the caller then looks that order up with ByIdempotencyKey.
func (s *Orders) Insert(ctx context.Context, tx *sql.Tx, o order.Order, idem order.Idempotency) (bool, error) {
	key := sql.NullString{String: idem.Key, Valid: idem.Key != ""}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO orders (id, customer_id, status, reason, currency, amount, payment_token, trace_id,
			idempotency_key, request_hash, created_at, updated_at, deadline_at, channel, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (customer_id, idempotency_key) DO NOTHING`,
		o.ID, o.CustomerID, o.Status, o.Reason, o.Currency, o.Amount, o.PaymentToken, o.TraceID,
		key, idem.RequestHash, o.CreatedAt, o.UpdatedAt, o.DeadlineAt, o.Channel, o.Version)
	if err != nil {
		return false, fmt.Errorf("insert order %s: %w", o.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert order %s: %w", o.ID, err)
	}
	if n == 0 {
		return false, nil
	}
	lines := make([]int64, len(o.Items))
	skus := make([]string, len(o.Items))
	qtys := make([]int64, len(o.Items))
	prices := make([]int64, len(o.Items))
	for i, it := range o.Items {
		lines[i], skus[i], qtys[i], prices[i] = int64(i), it.SKU, it.Qty, it.UnitPrice
	}
	// One statement for all lines rather than a round trip per item.
	_, err = tx.ExecContext(ctx, `
		INSERT INTO order_items (order_id, line, sku, qty, unit_price)
		SELECT $1, l, s, q, p FROM unnest($2::int[], $3::text[], $4::bigint[], $5::bigint[]) AS t(l, s, q, p)`,
		o.ID, pq.Array(lines), pq.Array(skus), pq.Array(qtys), pq.Array(prices))
	if err != nil {
		return false, fmt.Errorf("insert items of order %s: %w", o.ID, err)
	}
	return true, nil
}

// ByIdempotencyKey returns the id and request hash of the order customer placed with key; the
// error is a fault.NotFound when there is none.
func (s *Orders) ByIdempotencyKey(ctx context.Context, tx *sql.Tx, customer, key string) (uuid.UUID, string, error) {
	var (
		id   uuid.UUID
		hash string
	)
	err := tx.QueryRowContext(ctx, `SELECT id, request_hash FROM orders WHERE customer_id = $1 AND idempotency_key = $2`,
		customer, key).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return uuid.Nil, "", fault.Errorf(fault.NotFound, "no order has idempotency key %q", key)
	}
	if err != nil {
		return uuid.Nil, "", fmt.Errorf("find order by idempotency key: %w", err)
	}
	return id, hash, nil
}

// OpenOrders returns how many orders of customer are PENDING. It first takes a lock on the
// customer, held until tx ends, so that transactions counting the same customer's orders (to
// place one more) run one after the other.
func (s *Orders) OpenOrders(ctx context.Context, tx *sql.Tx, customer string) (int, error) {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('order-customer:' || $1, 0))`, customer); err != nil {
		return 0, fmt.Errorf("lock orders of customer %q: %w", customer, err)
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM orders WHERE customer_id = $1 AND status = 'PENDING'`, customer).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count open orders of customer %q: %w", customer, err)
	}
	return n, nil
}

// CustomerOf returns the customer of order id; the error is a fault.NotFound when there is none.
func (s *Orders) CustomerOf(ctx context.Context, id uuid.UUID) (string, error) {
	var c string
	err := s.db.QueryRowContext(ctx, `SELECT customer_id FROM orders WHERE id = $1`, id).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fault.Errorf(fault.NotFound, "order %s not found", id)
	}
	if err != nil {
		return "", fmt.Errorf("customer of order %s: %w", id, err)
	}
	return c, nil
}

// Get returns order id; the error is a fault.NotFound when there is none.
func (s *Orders) Get(ctx context.Context, id uuid.UUID) (order.Order, error) {
	return load(ctx, s.db, id, "")
}

// Lock loads order id in tx, locked so that the steps of one saga decide one after the other
// (the event store's unique seq is the rule that holds even for a writer that does not lock).
// The lock is FOR NO KEY UPDATE, the one an UPDATE of the row takes anyway: it excludes every
// other decider, but not the FOR KEY SHARE lock with which another transaction's insert checks
// its foreign key to the order (a timeline entry, RecordIfExists). The error is a
// fault.NotFound when there is no order id.
func (s *Orders) Lock(ctx context.Context, tx *sql.Tx, id uuid.UUID) (order.Order, error) {
	return load(ctx, tx, id, "FOR NO KEY UPDATE")
}

// Save writes the projection of order after, which the fold made from before (as Lock or
// LockExpired loaded it) and the events appended since, in tx: status, reason, delivery, update
// time, payment token and version. The row must still be at before's version and update time,
// else the error is a fault.Conflict. A status change is announced on StatusChannel when tx
// commits. Save of an unchanged order writes nothing.
func (s *Orders) Save(ctx context.Context, tx *sql.Tx, before, after order.Order) error {
	if after.Status == before.Status && after.Reason == before.Reason && after.Delivery == before.Delivery &&
		after.UpdatedAt.Equal(before.UpdatedAt) && after.Version == before.Version && after.PaymentToken == before.PaymentToken {
		return nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE orders SET status = $2, reason = $3, delivery = nullif($4, ''), updated_at = $5,
		payment_token = $6, version = $7 WHERE id = $1 AND version = $8 AND updated_at = $9`,
		after.ID, after.Status, after.Reason, after.Delivery, after.UpdatedAt, after.PaymentToken, after.Version,
		before.Version, before.UpdatedAt)
	if err != nil {
		return fmt.Errorf("save order %s: %w", after.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fault.Reasoned(fault.Conflict, order.CodeConcurrentWrite, "order %s changed meanwhile; try again", after.ID)
	}
	if after.Status == before.Status {
		return nil
	}
	// Postgres delivers a NOTIFY only when (and if) the transaction commits.
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, StatusChannel, after.ID.String()); err != nil {
		return fmt.Errorf("notify status of order %s: %w", after.ID, err)
	}
	return nil
}

// LockExpired locks up to limit PENDING orders whose deadline is before now, oldest deadline
// first, in tx, with their items. Orders another transaction holds are skipped (SKIP LOCKED), so
// several sweepers can run at once without waiting on each other or canceling one order twice.
func (s *Orders) LockExpired(ctx context.Context, tx *sql.Tx, now time.Time, limit int) ([]order.Order, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+orderColumns+` FROM orders
		WHERE status = 'PENDING' AND deadline_at < $1
		ORDER BY deadline_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("lock expired orders: %w", err)
	}
	expired, err := scanOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("lock expired orders: %w", err)
	}
	for i := range expired {
		if expired[i].Items, err = items(ctx, tx, expired[i].ID); err != nil {
			return nil, err
		}
	}
	return expired, nil
}

// load reads order id with its items; lock is "" or a locking clause such as "FOR UPDATE".
func load(ctx context.Context, q querier, id uuid.UUID, lock string) (order.Order, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1 `+lock, id)
	if err != nil {
		return order.Order{}, fmt.Errorf("load order %s: %w", id, err)
	}
	found, err := scanOrders(rows)
	if err != nil {
		return order.Order{}, fmt.Errorf("load order %s: %w", id, err)
	}
	if len(found) == 0 {
		return order.Order{}, fault.Errorf(fault.NotFound, "order %s not found", id)
	}
	o := found[0]
	if o.Items, err = items(ctx, q, id); err != nil {
		return order.Order{}, err
	}
	return o, nil
}

// scanOrders reads and closes rows of orderColumns.
func scanOrders(rows *sql.Rows) ([]order.Order, error) {
	defer rows.Close()
	var out []order.Order
	for rows.Next() {
		var o order.Order
		err := rows.Scan(&o.ID, &o.CustomerID, &o.Status, &o.Reason, &o.Delivery, &o.Currency, &o.Amount, &o.PaymentToken,
			&o.TraceID, &o.CreatedAt, &o.UpdatedAt, &o.DeadlineAt, &o.Channel, &o.Version, &o.IdempotencyKey, &o.RequestHash)
		if err != nil {
			return nil, err
		}
		o.CreatedAt, o.UpdatedAt, o.DeadlineAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC(), o.DeadlineAt.UTC()
		out = append(out, o)
	}
	return out, rows.Err()
}

// items reads the lines of order id in their original order.
func items(ctx context.Context, q querier, id uuid.UUID) ([]order.Item, error) {
	rows, err := q.QueryContext(ctx, `SELECT sku, qty, unit_price FROM order_items WHERE order_id = $1 ORDER BY line`, id)
	if err != nil {
		return nil, fmt.Errorf("load items of order %s: %w", id, err)
	}
	defer rows.Close()
	var out []order.Item
	for rows.Next() {
		var it order.Item
		if err := rows.Scan(&it.SKU, &it.Qty, &it.UnitPrice); err != nil {
			return nil, fmt.Errorf("load items of order %s: %w", id, err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load items of order %s: %w", id, err)
	}
	return out, nil
}

// Record adds entries to the timeline of order orderID in tx, payment tokens redacted (the
// timeline is public: GET /orders/{id}/events). An event already recorded (same event id) is
// left as it is, so re-recording on redelivery is harmless.
func (s *Orders) Record(ctx context.Context, tx *sql.Tx, orderID uuid.UUID, entries ...order.TimelineEntry) error {
	for _, e := range entries {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO order_timeline (event_id, order_id, event_type, source, occurred_at, data, recorded_at)
			VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()))
			ON CONFLICT (event_id) DO NOTHING`,
			e.EventID, orderID, e.EventType, e.Source, e.OccurredAt, string(messaging.Redact(e.Data)), recordedAt(e))
		if err != nil {
			return fmt.Errorf("record %s %s for order %s: %w", e.EventType, e.EventID, orderID, err)
		}
	}
	return nil
}

// RecordIfExists adds entry to the timeline of order orderID in tx, as Record does, without
// loading or locking the order: an event that changes nothing about the order (StockReserved,
// StockCommitted, ...) waits for no decider. It reports false, and writes nothing, when there is
// no order orderID. One statement; a second only when nothing was inserted (the order is missing,
// or the entry was recorded already: a redelivery).
func (s *Orders) RecordIfExists(ctx context.Context, tx *sql.Tx, orderID uuid.UUID, e order.TimelineEntry) (bool, error) {
	res, err := tx.ExecContext(ctx, `
		INSERT INTO order_timeline (event_id, order_id, event_type, source, occurred_at, data, recorded_at)
		SELECT $1, id, $3, $4, $5, $6, coalesce($7, now()) FROM orders WHERE id = $2
		ON CONFLICT (event_id) DO NOTHING`,
		e.EventID, orderID, e.EventType, e.Source, e.OccurredAt, string(messaging.Redact(e.Data)), recordedAt(e))
	if err != nil {
		return false, fmt.Errorf("record %s %s for order %s: %w", e.EventType, e.EventID, orderID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return true, nil
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)`, orderID).Scan(&exists); err != nil {
		return false, fmt.Errorf("record %s %s for order %s: %w", e.EventType, e.EventID, orderID, err)
	}
	return exists, nil
}

// recordedAt is the time an entry is recorded at: its RecordedAt when set (a delivery fact, whose
// time the fold reads), else the transaction's (NULL).
func recordedAt(e order.TimelineEntry) any {
	if e.RecordedAt.IsZero() {
		return nil
	}
	return e.RecordedAt
}

// Timeline returns every event recorded for order id, in the order they were recorded; the
// error is a fault.NotFound when there is no order id.
func (s *Orders) Timeline(ctx context.Context, id uuid.UUID) ([]order.TimelineEntry, error) {
	var exists bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)`, id).Scan(&exists); err != nil {
		return nil, fmt.Errorf("timeline of order %s: %w", id, err)
	}
	if !exists {
		return nil, fault.Errorf(fault.NotFound, "order %s not found", id)
	}
	rows, err := s.db.QueryContext(ctx, `
		SELECT event_id, event_type, source, occurred_at, recorded_at, data
		FROM order_timeline WHERE order_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("timeline of order %s: %w", id, err)
	}
	defer rows.Close()
	out := []order.TimelineEntry{}
	for rows.Next() {
		var (
			e    order.TimelineEntry
			data []byte
		)
		if err := rows.Scan(&e.EventID, &e.EventType, &e.Source, &e.OccurredAt, &e.RecordedAt, &data); err != nil {
			return nil, fmt.Errorf("timeline of order %s: %w", id, err)
		}
		e.OccurredAt, e.RecordedAt, e.Data = e.OccurredAt.UTC(), e.RecordedAt.UTC(), data
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("timeline of order %s: %w", id, err)
	}
	return out, nil
}
