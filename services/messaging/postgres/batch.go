package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Batches returns what runs a batch of consumed messages in one transaction of db, for
// kafka.Consumer's Batch (and kafka.HandleBatch): it calls fn with a context that carries the
// batch's transaction, which every Transactional(db, ...) handler called with that context joins
// instead of beginning its own. The transaction begins with the first handler that joins it (a
// batch of ignored events touches no database) and commits once, when fn returns nil; when fn
// returns an error or panics, it rolls back and nothing of the batch is written.
func Batches(db *sql.DB) func(ctx context.Context, fn func(ctx context.Context) error) error {
	return func(ctx context.Context, fn func(ctx context.Context) error) error {
		b := &batchTx{ctx: ctx, db: db}
		defer func() {
			if p := recover(); p != nil {
				_ = b.rollback()
				panic(p)
			}
		}()
		if err := fn(context.WithValue(ctx, batchTxKey{}, b)); err != nil {
			if rbErr := b.rollback(); rbErr != nil {
				return errors.Join(err, rbErr)
			}
			return err
		}
		if b.tx == nil {
			return nil
		}
		if err := b.tx.Commit(); err != nil {
			return fmt.Errorf("commit batch: %w", err)
		}
		return nil
	}
}

// batchTx is the transaction of one batch, begun by the first handler that joins it.
type batchTx struct {
	ctx context.Context // the batch's: the transaction lives as long as it
	db  *sql.DB
	tx  *sql.Tx
}

type batchTxKey struct{}

// joinBatch returns the transaction of the batch that ctx handles a message of, beginning it if
// no handler did yet. A batch of another database (or none, in a batch run by something other than
// Batches) is an error: the handler's writes could not commit with the batch's.
func joinBatch(ctx context.Context, db *sql.DB) (*sql.Tx, error) {
	b, ok := ctx.Value(batchTxKey{}).(*batchTx)
	if !ok || b.db != db {
		return nil, errors.New("join batch: the batch has no transaction on this database")
	}
	if b.tx == nil {
		tx, err := db.BeginTx(b.ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("begin batch tx: %w", err)
		}
		b.tx = tx
	}
	return b.tx, nil
}

// rollback rolls the batch's transaction back, if it began.
func (b *batchTx) rollback() error {
	if b.tx == nil {
		return nil
	}
	if err := b.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rollback batch: %w", err)
	}
	return nil
}
