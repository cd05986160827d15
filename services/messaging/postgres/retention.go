package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// InboxRetention is how long an inbox must keep an event id when the topics keep their records
// for a while: their retention (Kafka's log.retention.hours, 168 h) plus a day of margin, since an
// event older than that cannot be redelivered. The stack's event topics keep every record for ever
// (the pipeline's history, docs/architecture.md), so its services keep every id too and prune
// nothing (service.Open): a consumer group reset to the beginning must find every event done.
const InboxRetention = 192 * time.Hour

// Retention deletes, every Every, the rows a table keeps for no longer than Keep: the inbox's
// event ids by default (Table processed_events, Column processed_at). Deletes go in batches of
// Batch rows, so a large backlog never holds a long lock.
type Retention struct {
	DB     *sql.DB
	Table  string        // a table of ours, never user input
	Column string        // its timestamptz column
	Keep   time.Duration // rows older than this are deleted
	Every  time.Duration // 0 means an hour
	Batch  int           // 0 means 10,000
	Log    zerolog.Logger
}

// Prune deletes the rows older than Keep at now and returns how many.
func (r *Retention) Prune(ctx context.Context, now time.Time) (int64, error) {
	batch := r.Batch
	if batch <= 0 {
		batch = 10_000
	}
	cutoff := now.Add(-r.Keep)
	var total int64
	for {
		res, err := r.DB.ExecContext(ctx, fmt.Sprintf(`DELETE FROM %[1]s WHERE ctid IN (
			SELECT ctid FROM %[1]s WHERE %[2]s < $1 LIMIT $2)`, r.Table, r.Column), cutoff, batch)
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", r.Table, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", r.Table, err)
		}
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

// Run prunes every Every until ctx is done, then returns nil; a failed prune is logged and tried
// again at the next tick.
func (r *Retention) Run(ctx context.Context) error {
	every := r.Every
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		n, err := r.Prune(ctx, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			r.Log.Error().Err(err).Str("table", r.Table).Msg("retention prune failed")
		case n > 0:
			r.Log.Info().Int64("deleted", n).Str("table", r.Table).Dur("keep", r.Keep).Msg("retention prune")
		}
	}
}
