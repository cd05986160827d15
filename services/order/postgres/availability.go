package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Availability is what the order service knows of the SKUs the inventory sold out
// (sku_availability), as StockDepleted and StockReplenished told it.
type Availability struct{ db *sql.DB }

// NewAvailability returns the sold-out table in db.
func NewAvailability(db *sql.DB) *Availability { return &Availability{db: db} }

// Set records in tx that sku is sold out (or not) as of asOf, the time of the inventory's
// event. A state older than the one stored is left out (applied=false): an event replayed late
// never undoes a newer one.
func (r *Availability) Set(ctx context.Context, tx *sql.Tx, sku string, soldOut bool, asOf time.Time) (applied bool, err error) {
	res, err := tx.ExecContext(ctx, `
		INSERT INTO sku_availability (sku, sold_out, as_of) VALUES ($1, $2, $3)
		ON CONFLICT (sku) DO UPDATE SET sold_out = EXCLUDED.sold_out, as_of = EXCLUDED.as_of, updated_at = now()
		WHERE sku_availability.as_of <= EXCLUDED.as_of`, sku, soldOut, asOf)
	if err != nil {
		return false, fmt.Errorf("set availability of %s: %w", sku, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("set availability of %s: %w", sku, err)
	}
	return n == 1, nil
}

// FirstSoldOut returns the first of skus, in SKU order, known to be sold out, read in tx;
// found=false when none is.
func (r *Availability) FirstSoldOut(ctx context.Context, tx *sql.Tx, skus []string) (sku string, found bool, err error) {
	err = tx.QueryRowContext(ctx, `
		SELECT sku FROM sku_availability WHERE sku = ANY($1) AND sold_out ORDER BY sku LIMIT 1`, pq.Array(skus)).Scan(&sku)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read sold-out skus: %w", err)
	}
	return sku, true, nil
}
