// Package postgres stores the catalog's read models in its database (catalog_db): products,
// the completed orders counted and the daily sales, and their migrations. Every SQL statement of
// the service lives here. The saga's writes run in the caller's transaction (with the inbox
// row); the HTTP reads are single statements on the pool.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"outboxsaga.dev/catalog"
	"outboxsaga.dev/messaging/fault"
)

// Catalog is the repository of the read models.
type Catalog struct{ db *sql.DB }

// NewCatalog returns the repository of the read models in db.
func NewCatalog(db *sql.DB) *Catalog { return &Catalog{db: db} }

// SetSoldOut records in tx that sku is sold out since at (soldOut) or is not any more, as of at,
// the stock event's occurredAt. A state older than the stored one is left out: applied=false.
func (c *Catalog) SetSoldOut(ctx context.Context, tx *sql.Tx, sku string, soldOut bool, at time.Time) (applied bool, err error) {
	var since sql.NullTime
	if soldOut {
		since = sql.NullTime{Time: at, Valid: true}
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO products (sku, sold_out, sold_out_at, state_as_of) VALUES ($1, $2, $3, $4)
		ON CONFLICT (sku) DO UPDATE SET sold_out = EXCLUDED.sold_out, sold_out_at = EXCLUDED.sold_out_at,
			state_as_of = EXCLUDED.state_as_of, updated_at = now()
		WHERE products.state_as_of IS NULL OR products.state_as_of <= EXCLUDED.state_as_of`, sku, soldOut, since, at)
	if err != nil {
		return false, fmt.Errorf("set sold out of %s: %w", sku, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("set sold out of %s: %w", sku, err)
	}
	return n == 1, nil
}

// CountOrder adds a completed order's sales to the products and to day's sales, in tx, unless
// the order was counted before (counted=false: nothing changes).
func (c *Catalog) CountOrder(ctx context.Context, tx *sql.Tx, orderID, day string, completedAt time.Time, sales []catalog.Sale) (counted bool, err error) {
	res, err := tx.ExecContext(ctx, `
		INSERT INTO counted_orders (order_id, day, completed_at) VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING`,
		orderID, day, completedAt)
	if err != nil {
		return false, fmt.Errorf("count order %s: %w", orderID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	// In SKU order (Sales sorts them), so concurrent orders lock rows in one order.
	for _, s := range sales {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO products (sku, units_sold) VALUES ($1, $2)
			ON CONFLICT (sku) DO UPDATE SET units_sold = products.units_sold + EXCLUDED.units_sold, updated_at = now()`,
			s.SKU, s.Units); err != nil {
			return false, fmt.Errorf("count order %s: units of %s: %w", orderID, s.SKU, err)
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO daily_sales (day, sku, units, orders) VALUES ($1, $2, $3, 1)
			ON CONFLICT (day, sku) DO UPDATE SET units = daily_sales.units + EXCLUDED.units, orders = daily_sales.orders + 1`,
			day, s.SKU, s.Units); err != nil {
			return false, fmt.Errorf("count order %s: day %s of %s: %w", orderID, day, s.SKU, err)
		}
	}
	return true, nil
}

// Product returns what the catalog knows of sku; a fault.NotFound for a SKU it never heard of.
func (c *Catalog) Product(ctx context.Context, sku string) (catalog.Product, error) {
	p := catalog.Product{SKU: sku}
	var since sql.NullTime
	err := c.db.QueryRowContext(ctx, `SELECT sold_out, sold_out_at, units_sold FROM products WHERE sku = $1`, sku).
		Scan(&p.SoldOut, &since, &p.UnitsSold)
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Product{}, fault.Errorf(fault.NotFound, "sku %s is not in the catalog", sku)
	}
	if err != nil {
		return catalog.Product{}, fmt.Errorf("get product %s: %w", sku, err)
	}
	if since.Valid {
		t := since.Time.UTC()
		p.SoldOutAt = &t
	}
	return p, nil
}

// Ranking returns day's best sellers, at most limit, ranked (units descending, SKU ascending);
// an empty slice for a day without sales.
func (c *Catalog) Ranking(ctx context.Context, day string, limit int) ([]catalog.Rank, error) {
	rows, err := c.db.QueryContext(ctx, `
		SELECT sku, units, orders FROM daily_sales WHERE day = $1 ORDER BY units DESC, sku COLLATE "C" ASC LIMIT $2`, day, limit)
	if err != nil {
		return nil, fmt.Errorf("ranking of %s: %w", day, err)
	}
	defer rows.Close()
	out := []catalog.Rank{}
	for rows.Next() {
		var r catalog.Rank
		if err := rows.Scan(&r.SKU, &r.Units, &r.Orders); err != nil {
			return nil, fmt.Errorf("ranking of %s: %w", day, err)
		}
		r.Rank = len(out) + 1
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ranking of %s: %w", day, err)
	}
	return out, nil
}
