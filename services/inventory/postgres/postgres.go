// Package postgres stores the inventory domain in the inventory service's database
// (inventory_db): the stock per SKU and the reservation of each order, and their migrations.
// Every SQL statement of the service lives here. The saga's writes run in the caller's
// transaction, so that a reservation, its stock moves and its outbox rows commit together;
// the HTTP reads and writes are single statements on the pool.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/messaging/fault"
)

// StockLevels is the repository of the stock rows, one per SKU, as the HTTP operations read and
// set them (single statements on the pool). The saga moves stock through Reservations.
type StockLevels struct{ db *sql.DB }

// NewStockLevels returns the repository of the stock rows in db.
func NewStockLevels(db *sql.DB) *StockLevels { return &StockLevels{db: db} }

// Get returns the stock of sku, or a fault.NotFound error when the SKU was never stocked.
func (s *StockLevels) Get(ctx context.Context, sku string) (inventory.Stock, error) {
	st, err := scanStock(s.db.QueryRowContext(ctx,
		`SELECT sku, available, reserved, sold FROM stock WHERE sku = $1`, sku))
	if errors.Is(err, sql.ErrNoRows) {
		return inventory.Stock{}, fault.Errorf(fault.NotFound, "sku %s is not stocked", sku)
	}
	if err != nil {
		return inventory.Stock{}, fmt.Errorf("get stock %s: %w", sku, err)
	}
	return st, nil
}

// SetAvailable sets the available count of sku to n, creating the row if needed; reserved and
// sold are left as they are (see inventory.Stock.SetAvailable for what that means for the
// invariant). It returns the stock as stored.
func (s *StockLevels) SetAvailable(ctx context.Context, sku string, n int64) (inventory.Stock, error) {
	want, err := inventory.Stock{SKU: sku}.SetAvailable(n)
	if err != nil {
		return inventory.Stock{}, err
	}
	// One statement: the row lock it takes orders it against a saga transaction holding the row.
	st, err := scanStock(s.db.QueryRowContext(ctx, `
		INSERT INTO stock (sku, available) VALUES ($1, $2)
		ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available, updated_at = now()
		RETURNING sku, available, reserved, sold`, want.SKU, want.Available))
	if err != nil {
		return inventory.Stock{}, fmt.Errorf("set available of %s: %w", sku, err)
	}
	return st, nil
}

// scanStock reads one row of (sku, available, reserved, sold).
func scanStock(row interface{ Scan(...any) error }) (inventory.Stock, error) {
	var st inventory.Stock
	err := row.Scan(&st.SKU, &st.Available, &st.Reserved, &st.Sold)
	return st, err
}
