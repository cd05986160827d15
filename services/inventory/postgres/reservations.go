package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lib/pq"

	"outboxsaga.dev/inventory"
)

// Reservations is the repository of the orders' reservations and the stock they move. Its writes
// (Create, Update) run in the caller's transaction and lock stock rows FOR UPDATE in SKU order,
// so they do not deadlock; a serialization failure or deadlock that happens anyway rolls the
// transaction back with an error that messaging/postgres.IsUnavailable reports, and the consumer
// runs the step again.
type Reservations struct{ db *sql.DB }

// NewReservations returns the repository of the reservations in db.
func NewReservations(db *sql.DB) *Reservations { return &Reservations{db: db} }

// ErrNoReservation is returned (wrapped) by Update and Get for an order inventory never saw.
var ErrNoReservation = errors.New("no reservation")

// Decide is a domain decision over a reservation and the locked stock rows of its SKUs.
type Decide func(r inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error)

// Create records what inventory does for a new order, in tx. If the order has a
// reservation already it returns created=false without calling decide. Otherwise it locks the
// stock rows of skus in SKU order, runs decide (which sees a zero Reservation) and inserts the
// reservation and stock moves it decided.
//
// Two transactions racing for the same new order both pass the existence check; the second
// insert then fails on the primary key and its transaction rolls back. Retrying it finds the
// reservation and does nothing.
func (s *Reservations) Create(ctx context.Context, tx *sql.Tx, orderID string, skus []string, decide Decide) (c inventory.Change, created bool, err error) {
	var exists bool
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM reservations WHERE order_id = $1)`, orderID).Scan(&exists)
	if err != nil {
		return inventory.Change{}, false, fmt.Errorf("create reservation %s: %w", orderID, err)
	}
	if exists {
		return inventory.Change{}, false, nil
	}
	stock, err := lockStock(ctx, tx, skus)
	if err != nil {
		return inventory.Change{}, false, fmt.Errorf("create reservation %s: %w", orderID, err)
	}
	c, err = decide(inventory.Reservation{OrderID: orderID}, stock)
	if err != nil {
		return inventory.Change{}, false, fmt.Errorf("create reservation %s: %w", orderID, err)
	}
	if err := insertReservation(ctx, tx, c.Reservation); err != nil {
		return inventory.Change{}, false, fmt.Errorf("create reservation %s: %w", orderID, err)
	}
	if err := updateStock(ctx, tx, c.Stock); err != nil {
		return inventory.Change{}, false, fmt.Errorf("create reservation %s: %w", orderID, err)
	}
	return c, true, nil
}

// Update locks the order's reservation and then the stock rows of its SKUs (always
// in that order, and the stock rows in SKU order, so transactions never deadlock), runs decide
// and writes back what it decided. An ignored decision writes nothing. The error wraps
// ErrNoReservation when the order has no reservation.
func (s *Reservations) Update(ctx context.Context, tx *sql.Tx, orderID string, decide Decide) (inventory.Change, error) {
	r, err := lockReservation(ctx, tx, orderID)
	if err != nil {
		return inventory.Change{}, fmt.Errorf("update reservation %s: %w", orderID, err)
	}
	var stock map[string]inventory.Stock
	if r.Status == inventory.StatusReserved {
		if stock, err = lockStock(ctx, tx, inventory.SKUs(r.Items)); err != nil {
			return inventory.Change{}, fmt.Errorf("update reservation %s: %w", orderID, err)
		}
	}
	c, err := decide(r, stock)
	if err != nil {
		return inventory.Change{}, fmt.Errorf("update reservation %s: %w", orderID, err)
	}
	if c.Outcome == inventory.OutcomeIgnored {
		return c, nil
	}
	if err := saveReservation(ctx, tx, c.Reservation); err != nil {
		return inventory.Change{}, fmt.Errorf("update reservation %s: %w", orderID, err)
	}
	if err := updateStock(ctx, tx, c.Stock); err != nil {
		return inventory.Change{}, fmt.Errorf("update reservation %s: %w", orderID, err)
	}
	return c, nil
}

// Get returns the order's reservation; the error wraps ErrNoReservation when there is
// none. It takes no lock: for reads outside the saga (and tests).
func (s *Reservations) Get(ctx context.Context, orderID string) (inventory.Reservation, error) {
	return scanReservation(s.db.QueryRowContext(ctx, selectReservation, orderID), orderID)
}

const selectReservation = `SELECT order_id, status, items, reason FROM reservations WHERE order_id = $1`

// lockReservation loads the order's reservation FOR UPDATE.
func lockReservation(ctx context.Context, tx *sql.Tx, orderID string) (inventory.Reservation, error) {
	return scanReservation(tx.QueryRowContext(ctx, selectReservation+` FOR UPDATE`, orderID), orderID)
}

func scanReservation(row *sql.Row, orderID string) (inventory.Reservation, error) {
	var (
		r     inventory.Reservation
		items []byte
	)
	err := row.Scan(&r.OrderID, &r.Status, &items, &r.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return inventory.Reservation{}, fmt.Errorf("order %s: %w", orderID, ErrNoReservation)
	}
	if err != nil {
		return inventory.Reservation{}, fmt.Errorf("read reservation %s: %w", orderID, err)
	}
	if err := json.Unmarshal(items, &r.Items); err != nil {
		return inventory.Reservation{}, fmt.Errorf("items of reservation %s: %w", orderID, err)
	}
	return r, nil
}

// lockStock loads the stock rows of skus FOR UPDATE. Postgres locks the rows in the ORDER BY
// order, so every transaction takes its locks in SKU order and none can wait in a cycle. SKUs
// without a row are absent from the map.
func lockStock(ctx context.Context, tx *sql.Tx, skus []string) (map[string]inventory.Stock, error) {
	stock := make(map[string]inventory.Stock, len(skus))
	if len(skus) == 0 {
		return stock, nil
	}
	rows, err := tx.QueryContext(ctx, `
		SELECT sku, available, reserved, sold FROM stock
		WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`, pq.Array(skus))
	if err != nil {
		return nil, fmt.Errorf("lock stock: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		st, err := scanStock(rows)
		if err != nil {
			return nil, fmt.Errorf("lock stock: %w", err)
		}
		stock[st.SKU] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock stock: %w", err)
	}
	return stock, nil
}

func insertReservation(ctx context.Context, tx *sql.Tx, r inventory.Reservation) error {
	items, err := json.Marshal(r.Items)
	if err != nil {
		return fmt.Errorf("marshal items: %w", err)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO reservations (order_id, status, items, reason) VALUES ($1, $2, $3, $4)`,
		r.OrderID, r.Status, string(items), r.Reason)
	if err != nil {
		return fmt.Errorf("insert reservation: %w", err)
	}
	return nil
}

// saveReservation writes a reservation's status and reason; its items never change.
func saveReservation(ctx context.Context, tx *sql.Tx, r inventory.Reservation) error {
	_, err := tx.ExecContext(ctx,
		`UPDATE reservations SET status = $2, reason = $3, updated_at = now() WHERE order_id = $1`,
		r.OrderID, r.Status, r.Reason)
	if err != nil {
		return fmt.Errorf("save reservation: %w", err)
	}
	return nil
}

// updateStock writes the counts of rows locked earlier in the same transaction.
func updateStock(ctx context.Context, tx *sql.Tx, stock []inventory.Stock) error {
	for _, st := range stock {
		res, err := tx.ExecContext(ctx,
			`UPDATE stock SET available = $2, reserved = $3, sold = $4, updated_at = now() WHERE sku = $1`,
			st.SKU, st.Available, st.Reserved, st.Sold)
		if err != nil {
			return fmt.Errorf("update stock %s: %w", st.SKU, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("update stock %s: %w", st.SKU, err)
		}
		if n != 1 {
			return fmt.Errorf("update stock %s: the row is gone", st.SKU)
		}
	}
	return nil
}
