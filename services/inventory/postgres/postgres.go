// Package postgres stores the inventory domain in Postgres: the stock table, the reservations
// table and their migrations. Every SQL statement of the service lives here.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/lib/pq"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/messaging/fault"
	messagingpg "outboxsaga.dev/messaging/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the shared messaging migrations (outbox, inbox, dead letters), then the
// inventory tables.
func Migrate(ctx context.Context, db *sql.DB) error {
	if err := messagingpg.MigrateMessaging(ctx, db); err != nil {
		return fmt.Errorf("migrate messaging: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("inventory migrations: %w", err)
	}
	if err := messagingpg.Migrate(ctx, db, "inventory", sub); err != nil {
		return fmt.Errorf("migrate inventory: %w", err)
	}
	return nil
}

// IsTransient reports whether err is a Postgres serialization failure or deadlock (SQLSTATE
// class 40): the transaction was rolled back and running it again may well succeed.
func IsTransient(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code.Class() == "40"
}

// StockStore reads and sets stock for the HTTP API.
type StockStore struct {
	db *sql.DB
}

// NewStockStore returns a StockStore on db.
func NewStockStore(db *sql.DB) *StockStore {
	return &StockStore{db: db}
}

// Stock returns the stock of sku, or a fault.NotFound error when the SKU was never stocked.
func (s *StockStore) Stock(ctx context.Context, sku string) (inventory.Stock, error) {
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
func (s *StockStore) SetAvailable(ctx context.Context, sku string, n int64) (inventory.Stock, error) {
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
