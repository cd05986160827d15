// Package postgres stores the shipping domain in the shipping service's database
// (shipping_db): the deliveries and their migrations. Every SQL statement of the service lives
// here. The saga's and the carrier's writes run in the caller's transaction, so that a delivery
// and its outbox event commit together; the HTTP read is one statement on the pool.
package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/shipping"
)

// columns are a delivery's columns, in the order query scans them.
const columns = `order_id, delivery_id, status, items, trace_id, created_at, updated_at, traceparent`

// Deliveries is the repository of deliveries, one per completed order. Writes change a
// delivery's status and update time only; a trigger refuses anything but one step forward
// (migrations/0001_shipping.sql).
type Deliveries struct{ db *sql.DB }

// NewDeliveries returns the deliveries stored in db.
func NewDeliveries(db *sql.DB) *Deliveries { return &Deliveries{db: db} }

// Create inserts d in tx unless d's order has a delivery already: created is false then, and
// nothing is written. Two transactions racing to create one order's delivery cannot both
// succeed: the second waits for the first and, once it committed, creates nothing.
func (s *Deliveries) Create(ctx context.Context, tx *sql.Tx, d shipping.Delivery) (created bool, err error) {
	items, err := json.Marshal(d.Items)
	if err == nil {
		err = tx.QueryRowContext(ctx, `INSERT INTO deliveries (`+columns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (order_id) DO NOTHING RETURNING true`,
			d.OrderID, d.ID, d.Status, string(items), d.TraceID, d.CreatedAt, d.UpdatedAt, d.Traceparent).Scan(&created)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // the order has its delivery
	}
	if err != nil {
		return false, fmt.Errorf("create delivery of order %s: %w", d.OrderID, err)
	}
	return created, nil
}

// Get returns the delivery of orderID; a fault.NotFound error when the order has none (an id
// that is not an order id has none either).
func (s *Deliveries) Get(ctx context.Context, orderID string) (shipping.Delivery, error) {
	return one(ctx, s.db, orderID, ``)
}

// Update locks the delivery of orderID (FOR UPDATE), lets fn change it and writes back what
// changed, all in tx. It returns the delivery as fn left it; a fault.NotFound error when the
// order has none, and fn's error (wrapped) when fn fails, having written nothing.
func (s *Deliveries) Update(ctx context.Context, tx *sql.Tx, orderID string,
	fn func(*shipping.Delivery) error) (shipping.Delivery, error) {
	d, err := one(ctx, tx, orderID, `FOR UPDATE`)
	if err != nil {
		return shipping.Delivery{}, err
	}
	changed := []shipping.Delivery{d}
	if err := change(ctx, tx, changed, fn); err != nil {
		return shipping.Delivery{}, err
	}
	return changed[0], nil
}

// UpdateDue locks up to limit deliveries that are not DELIVERED and reached their status at
// reachedBy or before, the longest waiting first, lets fn change each and writes back what
// changed, all in tx. Deliveries another transaction holds are skipped (SKIP LOCKED), so several
// carriers run at once without waiting on each other; one that another carrier advanced since
// this transaction began is no longer due and is left out (Postgres re-checks the condition on
// the row it locks). It returns the deliveries as fn left them.
func (s *Deliveries) UpdateDue(ctx context.Context, tx *sql.Tx, reachedBy time.Time, limit int,
	fn func(*shipping.Delivery) error) ([]shipping.Delivery, error) {
	due, err := query(ctx, tx, `WHERE status <> 'DELIVERED' AND updated_at <= $1
		ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED`, reachedBy, limit)
	if err != nil {
		return nil, fmt.Errorf("lock due deliveries: %w", err)
	}
	if err := change(ctx, tx, due, fn); err != nil {
		return nil, err
	}
	return due, nil
}

// change runs fn on each of ds (locked by the caller's transaction) and writes back the status
// and update time of those it changed. The write also requires the status fn saw: were a row
// ever not locked, a move decided on a stale read would fail instead of repeating a step.
func change(ctx context.Context, tx *sql.Tx, ds []shipping.Delivery, fn func(*shipping.Delivery) error) error {
	for i := range ds {
		d, before := &ds[i], ds[i]
		if err := fn(d); err != nil {
			return fmt.Errorf("update delivery of order %s: %w", d.OrderID, err)
		}
		if d.Status == before.Status && d.UpdatedAt.Equal(before.UpdatedAt) {
			continue
		}
		if err := save(ctx, tx, *d, before.Status); err != nil {
			return fmt.Errorf("save delivery of order %s: %w", d.OrderID, err)
		}
	}
	return nil
}

// save writes d's status and update time if its row still has status from.
func save(ctx context.Context, tx *sql.Tx, d shipping.Delivery, from shipping.Status) error {
	res, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = $2, updated_at = $3 WHERE order_id = $1 AND status = $4`,
		d.OrderID, d.Status, d.UpdatedAt, from)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(err, fmt.Errorf("it is no longer %s", from))
	}
	return nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// one reads the delivery of orderID; lock is "" or a locking clause. An order without one, or
// an id that is not an order id, is a fault.NotFound error.
func one(ctx context.Context, q querier, orderID, lock string) (shipping.Delivery, error) {
	if shipping.ValidateOrderID(orderID) != nil {
		return shipping.Delivery{}, noDelivery(orderID)
	}
	found, err := query(ctx, q, `WHERE order_id = $1 `+lock, orderID)
	if err != nil {
		return shipping.Delivery{}, fmt.Errorf("read delivery of order %s: %w", orderID, err)
	}
	if len(found) == 0 {
		return shipping.Delivery{}, noDelivery(orderID)
	}
	return found[0], nil
}

func noDelivery(orderID string) error {
	return fault.Errorf(fault.NotFound, "order %.40q has no delivery", orderID)
}

// query reads the deliveries that where (a WHERE clause and what follows) selects.
func query(ctx context.Context, q querier, where string, args ...any) ([]shipping.Delivery, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+columns+` FROM deliveries `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []shipping.Delivery
	for rows.Next() {
		var (
			d     shipping.Delivery
			items []byte
		)
		if err := rows.Scan(&d.OrderID, &d.ID, &d.Status, &items, &d.TraceID, &d.CreatedAt, &d.UpdatedAt, &d.Traceparent); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(items, &d.Items); err != nil {
			return nil, fmt.Errorf("items of the delivery of order %s: %w", d.OrderID, err)
		}
		d.CreatedAt, d.UpdatedAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
