package messaging

import (
	"context"
	"errors"
)

// ErrNotBatchable is returned by a Router, for a message handled as part of a batch (InBatch),
// when the message's handler was registered with Handle rather than HandleBatchable: the batch
// ends before the message, which is then handled on its own.
var ErrNotBatchable = errors.New("handler does not join batches")

// Batch is the state of one batch: consecutive messages of one partition whose handlers run in
// one database transaction and commit once (kafka.HandleBatch; the transaction itself is
// messaging/postgres's). It keeps what must wait for the commit (AfterCommit).
type Batch struct {
	after []func()
}

type batchKey struct{}

// WithBatch returns ctx marked as handling messages of a new batch, and the batch. Whoever
// commits the batch's transaction calls Committed after the commit, and drops the batch if the
// transaction rolled back.
func WithBatch(ctx context.Context) (context.Context, *Batch) {
	b := &Batch{}
	return context.WithValue(ctx, batchKey{}, b), b
}

// InBatch reports whether ctx handles a message as part of a batch: its writes go to the batch's
// transaction, and an error rolls back the whole batch, whose messages are then handled again one
// by one (so retries and dead letters happen only outside batches).
func InBatch(ctx context.Context) bool {
	_, ok := ctx.Value(batchKey{}).(*Batch)
	return ok
}

// AfterCommit runs fn once the writes of the message that ctx handles are committed: at once
// outside a batch (a handler's own transaction has committed when it returns), after the batch's
// commit inside one, and never if the batch rolls back (its messages are then handled again, one
// by one, and run their AfterCommit then). Logs and metrics of what a step did go here, so that
// they are counted once.
func AfterCommit(ctx context.Context, fn func()) {
	if b, ok := ctx.Value(batchKey{}).(*Batch); ok {
		b.after = append(b.after, fn)
		return
	}
	fn()
}

// Committed runs, in the order they were added, the functions that AfterCommit deferred to the
// batch's commit, and forgets them.
func (b *Batch) Committed() {
	after := b.after
	b.after = nil
	for _, fn := range after {
		fn()
	}
}
