// Package postgres is the Postgres side of messaging: transactions, migrations, the outbox insert
// (the only code in the project that writes an outbox), the inbox check and dead letters.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// WithTx runs fn in a transaction. It rolls back when fn returns an error or panics (the panic
// goes on), and otherwise returns the commit's error.
func WithTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin tx: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit tx: %w", err)
	}
	return nil
}
