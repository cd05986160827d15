package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lib/pq"

	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/order"
)

// Prices is the price list.
type Prices struct{ db *sql.DB }

// NewPrices returns the price list in db.
func NewPrices(db *sql.DB) *Prices { return &Prices{db: db} }

// Set stores p (after p.Validate) and returns it as stored.
func (r *Prices) Set(ctx context.Context, p order.Price) (order.Price, error) {
	if err := p.Validate(); err != nil {
		return order.Price{}, err
	}
	err := r.db.QueryRowContext(ctx, `
		INSERT INTO prices (sku, unit_price, currency) VALUES ($1, $2, $3)
		ON CONFLICT (sku) DO UPDATE SET unit_price = EXCLUDED.unit_price, currency = EXCLUDED.currency, updated_at = now()
		RETURNING sku, unit_price, currency`, p.SKU, p.UnitPrice, p.Currency).Scan(&p.SKU, &p.UnitPrice, &p.Currency)
	if err != nil {
		return order.Price{}, fmt.Errorf("set price of %s: %w", p.SKU, err)
	}
	return p, nil
}

// Get returns the price of sku; a fault.NotFound when it has none.
func (r *Prices) Get(ctx context.Context, sku string) (order.Price, error) {
	p := order.Price{SKU: sku}
	err := r.db.QueryRowContext(ctx, `SELECT unit_price, currency FROM prices WHERE sku = $1`, sku).Scan(&p.UnitPrice, &p.Currency)
	if errors.Is(err, sql.ErrNoRows) {
		return order.Price{}, fault.Errorf(fault.NotFound, "%s has no price", sku)
	}
	if err != nil {
		return order.Price{}, fmt.Errorf("get price of %s: %w", sku, err)
	}
	return p, nil
}

// Of returns the prices of skus that have one, by SKU, read in tx (the transaction that places
// the order, so that the order keeps the prices it was checked against).
func (r *Prices) Of(ctx context.Context, tx *sql.Tx, skus []string) (map[string]order.Price, error) {
	rows, err := tx.QueryContext(ctx, `SELECT sku, unit_price, currency FROM prices WHERE sku = ANY($1)`, pq.Array(skus))
	if err != nil {
		return nil, fmt.Errorf("read prices: %w", err)
	}
	defer rows.Close()
	out := make(map[string]order.Price, len(skus))
	for rows.Next() {
		var p order.Price
		if err := rows.Scan(&p.SKU, &p.UnitPrice, &p.Currency); err != nil {
			return nil, fmt.Errorf("read prices: %w", err)
		}
		out[p.SKU] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read prices: %w", err)
	}
	return out, nil
}
