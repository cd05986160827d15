package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
)

// BatchFunc runs fn in one database transaction that the handlers fn calls join, and commits it
// once when fn returns nil; when fn fails it rolls the transaction back, and nothing fn's
// handlers wrote stays. messaging/postgres.Batches makes one for a service's database.
type BatchFunc func(ctx context.Context, fn func(ctx context.Context) error) error

// HandleBatch handles ms, consecutive messages of one partition in offset order, through h, and
// calls done(i) (nil: nothing) for each ms[i] once what its handler did is committed, in order. On the first
// message that fails for good it stops and returns its error: it and the ones after it are not
// done (the consumer does not mark them, and they come again).
//
// Without batch, or for a single message, each message runs on its own, as h always did. With
// batch, the messages run in batches (messaging.WithBatch), each in one transaction with one
// commit (batch); Transactional handlers join it, and middleware and handlers that must not act
// before the commit wait for it (messaging.AfterCommit). A batch ends before a message whose
// handler does not join batches (messaging.ErrNotBatchable): what came before it commits, it
// runs on its own, and a new batch starts after it. Any other error of any message, a panic
// turned into an error included (Recover), rolls the whole batch back, and its messages run
// again one by one, where retries, dead letters and their DeadLettered events happen exactly as
// without batches. A database deadlock between batches of two partitions (whose locks accumulate
// until their commits) is such an error: the loser rolls back and goes one by one.
func HandleBatch(ctx context.Context, h messaging.Handler, batch BatchFunc, ms []*messaging.Message, done func(i int)) error {
	if done == nil {
		done = func(int) {}
	}
	// Each attempt handles a copy of the message as it came: Decode fills in the envelope.
	raw := make([]messaging.Message, len(ms))
	for i, m := range ms {
		raw[i] = *m
	}
	fresh := func(i int) *messaging.Message {
		m := raw[i]
		return &m
	}
	i := 0
	for batch != nil && len(ms)-i > 1 {
		n, err := inBatch(ctx, h, batch, raw[i:])
		if err != nil {
			if ctx.Err() != nil {
				return err // rebalance or shutdown: nothing marked, handled again later
			}
			zerolog.Ctx(ctx).Warn().Str("error", redacted(err)).Int("messages", len(ms)-i).Int64("offset", raw[i].Offset).
				Msg("batch rolled back; handling its messages one by one")
			break
		}
		for j := range n {
			done(i + j)
		}
		if i += n; i < len(ms) { // ms[i] does not join batches
			if err := one(ctx, h, fresh(i)); err != nil {
				return err
			}
			done(i)
			i++
		}
	}
	for ; i < len(ms); i++ {
		if err := one(ctx, h, fresh(i)); err != nil {
			return err
		}
		done(i)
	}
	return nil
}

// inBatch runs copies of ms through h in one batch until one does not join batches, and commits
// what ran. It returns how many messages committed: len(ms), or the index of the first one that
// did not join.
func inBatch(ctx context.Context, h messaging.Handler, batch BatchFunc, ms []messaging.Message) (int, error) {
	ctx, b := messaging.WithBatch(ctx)
	n := len(ms)
	err := batch(ctx, func(ctx context.Context) error {
		for i := range ms {
			m := ms[i]
			err := h(ctx, &m)
			if errors.Is(err, messaging.ErrNotBatchable) {
				n = i
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("handle batch of %d: %w", len(ms), err)
	}
	b.Committed()
	if n > 0 {
		zerolog.Ctx(ctx).Debug().Int("messages", n).Int64("offset", ms[0].Offset).Msg("batch committed")
	}
	return n, nil
}

// one runs m through h on its own.
func one(ctx context.Context, h messaging.Handler, m *messaging.Message) error {
	if err := h(ctx, m); err != nil {
		return fmt.Errorf("handle %s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return nil
}
