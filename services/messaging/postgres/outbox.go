package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"outboxsaga.dev/messaging"
)

// InsertOutbox writes e to the outbox in the caller's transaction, so the event is emitted if and
// only if the business change commits. It is the only code in the project that writes an outbox.
//
// The row is inserted and deleted again in the same transaction: Debezium reads the INSERT from
// the WAL and the outbox router ignores the DELETE, so the table stays empty (no purge job).
// tp becomes the Kafka header traceparent and must belong to e's trace.
func InsertOutbox(ctx context.Context, tx *sql.Tx, e messaging.Envelope, tp messaging.Traceparent) error {
	if e.EventID == "" || e.EventType == "" || e.AggregateType == "" || e.AggregateID == "" {
		return fmt.Errorf("insert outbox %s %s: incomplete envelope", e.EventType, e.EventID)
	}
	if tp.IsZero() || tp.TraceID() != e.TraceID {
		return fmt.Errorf("insert outbox %s %s: traceparent %q is not in trace %q", e.EventType, e.EventID, tp, e.TraceID)
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("insert outbox %s %s: marshal: %w", e.EventType, e.EventID, err)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, traceparent) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.EventID, e.AggregateType, e.AggregateID, e.EventType, string(payload), tp.String())
	if err != nil {
		return fmt.Errorf("insert outbox %s %s: %w", e.EventType, e.EventID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = $1`, e.EventID); err != nil {
		return fmt.Errorf("delete outbox %s %s: %w", e.EventType, e.EventID, err)
	}
	return nil
}
