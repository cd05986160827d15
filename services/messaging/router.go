package messaging

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// ErrNoRoute is returned (wrapped, and marked Permanent) by a Router for an event type and
// version that is neither handled nor ignored.
var ErrNoRoute = errors.New("no route for event")

// Router dispatches a message to the handler registered for its event type and version.
//
// A service registers the events it acts on with Handle, or HandleBatchable for handlers that may
// run inside a batch's transaction, and names the ones it knowingly skips (other events on the
// topics it reads) with Ignore. Anything else is poison: the Router returns a Permanent error, so
// the message is dead-lettered rather than silently dropped. Register everything before the
// Router handles its first message.
type Router struct {
	routes map[route]entry
	keyed  Keyed
}

// entry is a registered handler and whether it may run inside a batch.
type entry struct {
	h         Handler
	batchable bool
}

type route struct {
	eventType string
	version   int
}

// NewRouter returns an empty Router.
func NewRouter() *Router {
	return &Router{routes: make(map[route]entry)}
}

// Handle registers h for eventType at version. h never runs inside a batch (InBatch): a message
// for it ends the batch before it and is handled on its own, so h may call the outside world and
// open transactions of its own. Registering a pair twice panics (a programming error).
func (r *Router) Handle(eventType string, version int, h Handler) {
	r.register(eventType, version, entry{h: h})
}

// HandleBatchable is Handle for a handler that is pure database work through the kit's step
// (messaging/postgres.Saga.Handle or Step), which joins a batch's transaction when there is one:
// it may then run with other messages of its partition in one transaction, and must call nothing
// outside that database before the commit (what has to wait for the commit is the step's
// Result.Done, run through AfterCommit).
func (r *Router) HandleBatchable(eventType string, version int, h Handler) {
	r.register(eventType, version, entry{h: h, batchable: true})
}

func (r *Router) register(eventType string, version int, e entry) {
	k := route{eventType, version}
	if _, dup := r.routes[k]; dup {
		panic("messaging: route " + eventType + " v" + strconv.Itoa(version) + " registered twice")
	}
	r.routes[k] = e
}

// Key sets the data field of the events that must equal their aggregate id (Keyed.Check, run
// before every handler) and the aggregate id's name in the log (kafka.HandlerConfig.Keyed, which
// messaging/service.Consume takes from here). Call it before the Router handles its first message.
func (r *Router) Key(k Keyed) { r.keyed = k }

// Keyed returns what Key set.
func (r *Router) Keyed() Keyed { return r.keyed }

// Ignore marks eventType at version as known but irrelevant to this service: such messages
// succeed without doing anything, in a batch or not.
func (r *Router) Ignore(eventType string, version int) {
	r.HandleBatchable(eventType, version, func(context.Context, *Message) error { return nil })
}

// Dispatch runs the handler registered for m's event type and version. Inside a batch it refuses,
// with ErrNotBatchable and before running it, a handler registered with Handle. An event whose
// key field contradicts its aggregate id (Key) is poison and reaches no handler. The handler's
// error goes through Classify, the one mapping of fault codes to retry or poison. It is a
// Handler: pass router.Dispatch to Chain.
func (r *Router) Dispatch(ctx context.Context, m *Message) error {
	e, ok := r.routes[route{m.EventType, m.EventVersion}]
	if !ok {
		return Permanent(fmt.Errorf("route %s v%d (event %s): %w", m.EventType, m.EventVersion, m.EventID, ErrNoRoute))
	}
	if !e.batchable && InBatch(ctx) {
		return fmt.Errorf("route %s v%d (event %s): %w", m.EventType, m.EventVersion, m.EventID, ErrNotBatchable)
	}
	if err := r.keyed.Check(m); err != nil {
		return err
	}
	return Classify(e.h(ctx, m))
}
