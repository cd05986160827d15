// Package postgres stores payments in the payment service's database: the payments table and its
// migrations. The inbox and the outbox are the shared ones (messaging/postgres).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/payment"
)

// Payments is the repository of payments.
type Payments struct{ db *sql.DB }

// NewPayments returns the payments stored in db.
func NewPayments(db *sql.DB) *Payments { return &Payments{db: db} }

const selectPayment = `SELECT order_id, status, amount, currency, token, pg_txn_id, reason, cancel_requested,
	created_at, updated_at FROM payments WHERE order_id = $1`

// Get returns the payment of orderID; a fault.NotFound error when there is none.
func (r *Payments) Get(ctx context.Context, orderID string) (payment.Payment, error) {
	p, err := scan(r.db.QueryRowContext(ctx, selectPayment, orderID))
	if errors.Is(err, sql.ErrNoRows) {
		return payment.Payment{}, fault.Errorf(fault.NotFound, "no payment for order %s", orderID)
	}
	if err != nil {
		return payment.Payment{}, fmt.Errorf("get payment %s: %w", orderID, err)
	}
	return p, nil
}

// Decide is a domain decision on the payment of an order as found (nil: none yet): it returns the
// payment to store, or nil to store nothing. It may run twice (see Upsert), so it must only decide.
type Decide func(found *payment.Payment) (*payment.Payment, error)

// Upsert locks the payment of orderID (FOR UPDATE), runs decide on it and stores what decide
// returns: an update of the locked row, or an insert when there was none. If a concurrent
// transaction inserts the row first, Upsert waits for it and decides again on its row.
func (r *Payments) Upsert(ctx context.Context, tx *sql.Tx, orderID string, decide Decide) error {
	for {
		found, err := lock(ctx, tx, orderID)
		if err != nil {
			return fmt.Errorf("lock payment %s: %w", orderID, err)
		}
		next, err := decide(found)
		if err != nil || next == nil {
			return err
		}
		if found != nil {
			if *next == *found {
				return nil // nothing changed; keep updated_at honest
			}
			return update(ctx, tx, *next)
		}
		inserted, err := insert(ctx, tx, *next)
		if err != nil || inserted {
			return err
		}
	}
}

// Update locks the payment of orderID (FOR UPDATE), lets fn change it and writes it back. A
// missing payment is a fault.NotFound error.
func (r *Payments) Update(ctx context.Context, tx *sql.Tx, orderID string, fn func(p *payment.Payment) error) error {
	return r.Upsert(ctx, tx, orderID, func(found *payment.Payment) (*payment.Payment, error) {
		if found == nil {
			return nil, fault.Errorf(fault.NotFound, "no payment for order %s", orderID)
		}
		p := *found
		if err := fn(&p); err != nil {
			return nil, err
		}
		return &p, nil
	})
}

// lock returns the payment of orderID locked FOR UPDATE, or nil when there is none.
func lock(ctx context.Context, tx *sql.Tx, orderID string) (*payment.Payment, error) {
	p, err := scan(tx.QueryRowContext(ctx, selectPayment+` FOR UPDATE`, orderID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// insert stores a new payment; inserted is false when the order has one already.
func insert(ctx context.Context, tx *sql.Tx, p payment.Payment) (inserted bool, err error) {
	res, err := tx.ExecContext(ctx, `
		INSERT INTO payments (order_id, status, amount, currency, token, pg_txn_id, reason, cancel_requested)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (order_id) DO NOTHING`,
		p.OrderID, p.Status, p.Amount, p.Currency, p.Token, p.PgTxnID, p.Reason, p.CancelRequested)
	if err != nil {
		return false, fmt.Errorf("insert payment %s: %w", p.OrderID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert payment %s: %w", p.OrderID, err)
	}
	return n == 1, nil
}

// update writes p back over its row.
func update(ctx context.Context, tx *sql.Tx, p payment.Payment) error {
	_, err := tx.ExecContext(ctx, `
		UPDATE payments SET status = $2, amount = $3, currency = $4, token = $5, pg_txn_id = $6, reason = $7,
			cancel_requested = $8, updated_at = now()
		WHERE order_id = $1`,
		p.OrderID, p.Status, p.Amount, p.Currency, p.Token, p.PgTxnID, p.Reason, p.CancelRequested)
	if err != nil {
		return fmt.Errorf("update payment %s: %w", p.OrderID, err)
	}
	return nil
}

func scan(row *sql.Row) (payment.Payment, error) {
	var p payment.Payment
	err := row.Scan(&p.OrderID, &p.Status, &p.Amount, &p.Currency, &p.Token, &p.PgTxnID, &p.Reason,
		&p.CancelRequested, &p.CreatedAt, &p.UpdatedAt)
	return p, err
}
