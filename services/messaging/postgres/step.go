package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
)

// Saga is what a service's saga steps share: its database, its outbox and the aggregate that the
// events it emits are about. Its Handle (and Step) is the one way a step runs: transaction,
// inbox row, the step's decision, the events it emits, and what to report once it committed.
type Saga struct {
	DB     *sql.DB
	Outbox *Outbox // nil for a service that emits no saga events
	// AggregateType and Version are those of every event the steps emit.
	AggregateType string
	Version       int
}

// Result is what a step decided inside its transaction.
type Result struct {
	// Key is the aggregate id of Events; empty: the consumed message's aggregate id.
	Key string
	// Events are written to the outbox in the step's transaction, in a child span of the consumed
	// message's trace (Outbox.EmitFor).
	Events []messaging.Event
	// Done, when set, reports what the step did (log lines through log, metrics) once its
	// transaction committed: at once outside a batch, at the batch's commit inside one, never if
	// it rolled back. It runs once per applied event.
	Done func(log *zerolog.Logger)
}

// Decision is a step's work inside its transaction: change what m calls for through tx, and
// return the events to emit and what to report.
type Decision func(ctx context.Context, tx *sql.Tx, m *messaging.Message) (Result, error)

// Handle returns the handler of one saga step: in one transaction, the inbox check (a message
// processed before is skipped and logged), decide's changes and the events it returns; after the
// commit, its Done. Inside a batch it joins the batch's transaction (see Transactional). An error
// is returned wrapped with the event's type and id; the Router classifies it (messaging.Classify),
// so decide returns plain fault errors.
func (s *Saga) Handle(decide Decision) messaging.Handler {
	return func(ctx context.Context, m *messaging.Message) error {
		var (
			r   Result
			ran bool
		)
		err := Transactional(s.DB, func(ctx context.Context, tx *sql.Tx, m *messaging.Message) error {
			ran = true
			var err error
			if r, err = decide(ctx, tx, m); err != nil {
				return err
			}
			return s.Emit(ctx, tx, m, r.Key, r.Events...)
		})(ctx, m)
		if err != nil {
			return fmt.Errorf("%s %s: %w", m.EventType, m.EventID, err)
		}
		messaging.AfterCommit(ctx, func() {
			log := zerolog.Ctx(ctx)
			switch {
			case !ran:
				log.Info().Msg("saga step skipped: event already processed")
			case r.Done != nil:
				r.Done(log)
			}
		})
		return nil
	}
}

// Step is Handle for a step that reads m's data as a D (messaging.Message.DecodeData: data that
// does not decode is poison) before its transaction.
func Step[D any](s *Saga, decide func(ctx context.Context, tx *sql.Tx, m *messaging.Message, d D) (Result, error)) messaging.Handler {
	return func(ctx context.Context, m *messaging.Message) error {
		var d D
		if err := m.DecodeData(&d); err != nil {
			return err
		}
		return s.Handle(func(ctx context.Context, tx *sql.Tx, m *messaging.Message) (Result, error) {
			return decide(ctx, tx, m, d)
		})(ctx, m)
	}
}

// Processed reports whether m's event is in the inbox, for a step that calls the outside world
// before its transaction (a webhook) and must not call it again for an event that took effect.
func (s *Saga) Processed(ctx context.Context, m *messaging.Message) (done bool, err error) {
	err = WithTx(ctx, s.DB, func(tx *sql.Tx) error {
		done, err = IsProcessed(ctx, tx, m)
		return err
	})
	return done, err
}

// Emit writes events about key (empty: m's aggregate id), caused by the consumed message m, to
// the outbox in tx: the saga's aggregate type and version, in a child span of m's trace. For the
// steps that manage their transactions themselves (a gateway call between two).
func (s *Saga) Emit(ctx context.Context, tx *sql.Tx, m *messaging.Message, key string, events ...messaging.Event) error {
	if len(events) == 0 {
		return nil
	}
	if key == "" {
		key = m.AggregateID
	}
	_, err := s.Outbox.EmitFor(ctx, tx, m, s.AggregateType, key, s.Version, events...)
	return err
}
