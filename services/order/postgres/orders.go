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

// Idempotency ties a new order to the client's Idempotency-Key (Key "" for none) and to a hash
// of the request it came with, so a retry can be told apart from a different request.
type Idempotency struct {
	Key         string
	RequestHash string
}

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
	created_at, updated_at, deadline_at`

// Insert writes the new order o with its items in tx. It returns false, and writes nothing, when
// o's customer used idem.Key for another order already (committed, or committed by a concurrent
// transaction this one waited for); the caller then looks that order up with ByIdempotencyKey.
func (s *Orders) Insert(ctx context.Context, tx *sql.Tx, o order.Order, idem Idempotency) (bool, error) {
	key := sql.NullString{String: idem.Key, Valid: idem.Key != ""}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO orders (id, customer_id, status, reason, currency, amount, payment_token, trace_id,
			idempotency_key, request_hash, created_at, updated_at, deadline_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (customer_id, idempotency_key) DO NOTHING`,
		o.ID, o.CustomerID, o.Status, o.Reason, o.Currency, o.Amount, o.PaymentToken, o.TraceID,
		key, idem.RequestHash, o.CreatedAt, o.UpdatedAt, o.DeadlineAt)
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

// Update loads order id in tx, locked FOR UPDATE so that concurrent steps of one saga apply one
// after the other, runs fn on it and writes back what fn changed. A status change is announced
// on StatusChannel when tx commits. The error is a fault.NotFound when there is no order id.
func (s *Orders) Update(ctx context.Context, tx *sql.Tx, id uuid.UUID, fn func(*order.Order) error) (order.Order, error) {
	o, err := load(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return order.Order{}, err
	}
	before := o
	if err := fn(&o); err != nil {
		return order.Order{}, fmt.Errorf("update order %s: %w", id, err)
	}
	if o.Status == before.Status && o.Reason == before.Reason && o.Delivery == before.Delivery && o.UpdatedAt.Equal(before.UpdatedAt) {
		return o, nil
	}
	forgetToken(&o)
	if err := save(ctx, tx, o, o.Status != before.Status); err != nil {
		return order.Order{}, err
	}
	return o, nil
}

// UpdateExpired locks up to limit PENDING orders whose deadline is before now, oldest deadline
// first, runs fn on each and writes them back, all in tx. Orders another transaction holds are
// skipped (SKIP LOCKED), so several sweepers can run at once without waiting on each other or
// canceling one order twice. It returns the orders as fn left them.
func (s *Orders) UpdateExpired(ctx context.Context, tx *sql.Tx, now time.Time, limit int, fn func(*order.Order) error) ([]order.Order, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+orderColumns+` FROM orders
		WHERE status = 'PENDING' AND deadline_at < $1
		ORDER BY deadline_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("lock expired orders: %w", err)
	}
	expired, err := scanOrders(rows)
	if err != nil {
		return nil, fmt.Errorf("lock expired orders: %w", err)
	}
	for i := range expired {
		o := &expired[i]
		if o.Items, err = items(ctx, tx, o.ID); err != nil {
			return nil, err
		}
		before := o.Status
		if err := fn(o); err != nil {
			return nil, fmt.Errorf("update expired order %s: %w", o.ID, err)
		}
		forgetToken(o)
		if err := save(ctx, tx, *o, o.Status != before); err != nil {
			return nil, err
		}
	}
	return expired, nil
}

// forgetToken clears the payment token of a terminal order: the token served the OrderCreated
// event only, and a finished order keeps no card secret (issue 19, point 6).
func forgetToken(o *order.Order) {
	if o.Status.Terminal() {
		o.PaymentToken = ""
	}
}

// save writes o's status, reason, delivery, update time and payment token (cleared once the order
// is terminal, forgetToken), and announces a status change.
func save(ctx context.Context, tx *sql.Tx, o order.Order, statusChanged bool) error {
	_, err := tx.ExecContext(ctx, `UPDATE orders SET status = $2, reason = $3, delivery = nullif($4, ''), updated_at = $5,
		payment_token = $6 WHERE id = $1`,
		o.ID, o.Status, o.Reason, o.Delivery, o.UpdatedAt, o.PaymentToken)
	if err != nil {
		return fmt.Errorf("save order %s: %w", o.ID, err)
	}
	if !statusChanged {
		return nil
	}
	// Postgres delivers a NOTIFY only when (and if) the transaction commits.
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, StatusChannel, o.ID.String()); err != nil {
		return fmt.Errorf("notify status of order %s: %w", o.ID, err)
	}
	return nil
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
			&o.TraceID, &o.CreatedAt, &o.UpdatedAt, &o.DeadlineAt)
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
			INSERT INTO order_timeline (event_id, order_id, event_type, source, occurred_at, data)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (event_id) DO NOTHING`,
			e.EventID, orderID, e.EventType, e.Source, e.OccurredAt, string(messaging.Redact(e.Data)))
		if err != nil {
			return fmt.Errorf("record %s %s for order %s: %w", e.EventType, e.EventID, orderID, err)
		}
	}
	return nil
}

// Emitted turns events the order service emitted into timeline entries (Source SourceSelf).
func Emitted(envs []messaging.Envelope) []order.TimelineEntry {
	out := make([]order.TimelineEntry, len(envs))
	for i, e := range envs {
		out[i] = order.TimelineEntry{EventID: e.EventID, EventType: e.EventType, Source: order.SourceSelf, OccurredAt: e.OccurredAt, Data: e.Data}
	}
	return out
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
