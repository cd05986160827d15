package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
)

// MarkProcessed records m's event id in the inbox (processed_events) in the caller's transaction.
// first is false when the event was processed before: the caller must then do nothing.
func MarkProcessed(ctx context.Context, tx *sql.Tx, m *messaging.Message) (first bool, err error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO processed_events (event_id, event_type, topic) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING`,
		m.EventID, m.EventType, m.Topic)
	if err != nil {
		return false, fmt.Errorf("mark processed %s: %w", m.EventID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark processed %s: %w", m.EventID, err)
	}
	return n == 1, nil
}

// IsProcessed reports whether m's event id is in the inbox, without marking it: for a step that
// must not mark its event before an outside call answered (the payment's gateway call), yet must
// not act on an event that took effect already.
func IsProcessed(ctx context.Context, tx *sql.Tx, m *messaging.Message) (bool, error) {
	var done bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM processed_events WHERE event_id = $1)`, m.EventID).Scan(&done)
	if err != nil {
		return false, fmt.Errorf("probe inbox for %s: %w", m.EventID, err)
	}
	return done, nil
}

// TxHandler handles a message inside a transaction that Transactional opened (or joined); every
// write, outbox rows included (Outbox.EmitFor), goes through tx.
type TxHandler func(ctx context.Context, tx *sql.Tx, m *messaging.Message) error

// Transactional runs h in one transaction together with the inbox check (the ground of the saga
// step, Saga.Handle, which adds the events and the after-commit report; services use that): a message whose event
// id was processed before is skipped (nil error, so its offset moves on), otherwise the inbox row,
// h's changes and h's outbox rows commit or roll back together.
//
// Inside a batch (messaging.InBatch) it joins the batch's transaction on db (Batches) instead of
// beginning one: the inbox check and h's writes go there, and it neither commits nor rolls back;
// the batch commits once after its last message, or rolls back as a whole on any error. A batch
// without a transaction on db is an error (the batch then rolls back and its messages are handled
// one by one).
func Transactional(db *sql.DB, h TxHandler) messaging.Handler {
	return func(ctx context.Context, m *messaging.Message) error {
		if !messaging.InBatch(ctx) {
			return WithTx(ctx, db, func(tx *sql.Tx) error { return once(ctx, tx, m, h) })
		}
		tx, err := joinBatch(ctx, db)
		if err != nil {
			return fmt.Errorf("%s %s: %w", m.EventType, m.EventID, err)
		}
		return once(ctx, tx, m, h)
	}
}

// once marks m processed in tx and runs h, unless m was processed before.
func once(ctx context.Context, tx *sql.Tx, m *messaging.Message, h TxHandler) error {
	first, err := MarkProcessed(ctx, tx, m)
	if err != nil {
		return err
	}
	if !first {
		zerolog.Ctx(ctx).Debug().Str("eventId", m.EventID).Msg("duplicate event skipped")
		return nil
	}
	return h(ctx, tx, m)
}
