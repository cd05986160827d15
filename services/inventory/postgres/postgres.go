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
	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
)

// StockLevels is the repository of the stock rows, one per SKU, as the HTTP operations read and
// set them. The saga moves stock through Reservations.
type StockLevels struct {
	db     *sql.DB
	outbox *msgpg.Outbox
}

// NewStockLevels returns the repository of the stock rows in db; the StockDepleted and
// StockReplenished events of a restock go out through outbox.
func NewStockLevels(db *sql.DB, outbox *msgpg.Outbox) *StockLevels {
	return &StockLevels{db: db, outbox: outbox}
}

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
// invariant). In the same transaction it emits the transition the change makes, if any
// (inventory.Restock: StockDepleted when it sets 0, StockReplenished when it lifts 0), under the
// SKU as aggregate id. It returns the stock as stored.
func (s *StockLevels) SetAvailable(ctx context.Context, sku string, n int64) (inventory.Stock, error) {
	if _, err := (inventory.Stock{SKU: sku}).SetAvailable(n); err != nil {
		return inventory.Stock{}, err
	}
	var st inventory.Stock
	err := msgpg.WithTx(ctx, s.db, func(tx *sql.Tx) error {
		const lock = `SELECT sku, available, reserved, sold FROM stock WHERE sku = $1 FOR UPDATE`
		cur, err := scanStock(tx.QueryRowContext(ctx, lock, sku))
		had := err == nil
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// A new SKU. A concurrent creator's insert makes this one do nothing (after waiting
			// for it to commit): the row is then there to lock.
			created, err := scanStock(tx.QueryRowContext(ctx, `
				INSERT INTO stock (sku, available) VALUES ($1, $2) ON CONFLICT (sku) DO NOTHING
				RETURNING sku, available, reserved, sold`, sku, n))
			if err == nil {
				st = created
				_, events, err := inventory.Restock(sku, inventory.Stock{}, false, n)
				if err != nil {
					return err
				}
				return s.emit(ctx, tx, events)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("insert stock: %w", err)
			}
			if cur, err = scanStock(tx.QueryRowContext(ctx, lock, sku)); err != nil {
				return fmt.Errorf("lock stock: %w", err)
			}
			had = true
		case err != nil:
			return fmt.Errorf("lock stock: %w", err)
		}
		next, events, err := inventory.Restock(sku, cur, had, n)
		if err != nil {
			return err
		}
		if err := updateStock(ctx, tx, []inventory.Stock{next}); err != nil {
			return err
		}
		st = next
		return s.emit(ctx, tx, events)
	})
	if err != nil {
		return inventory.Stock{}, fmt.Errorf("set available of %s: %w", sku, err)
	}
	return st, nil
}

// emit writes a restock's transition events to the outbox in tx, under their SKU as aggregate
// id, in a trace of their own.
func (s *StockLevels) emit(ctx context.Context, tx *sql.Tx, events []inventory.StockEvent) error {
	tp := messaging.NewTraceparent()
	for _, se := range events {
		if _, err := s.outbox.Emit(ctx, tx, tp, inventory.AggregateType, se.SKU, inventory.EventVersion, se.Event); err != nil {
			return err
		}
	}
	return nil
}

// scanStock reads one row of (sku, available, reserved, sold).
func scanStock(row interface{ Scan(...any) error }) (inventory.Stock, error) {
	var st inventory.Stock
	err := row.Scan(&st.SKU, &st.Available, &st.Reserved, &st.Sold)
	return st, err
}
