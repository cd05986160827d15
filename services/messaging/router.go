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
// A service registers the events it acts on with Handle and names the ones it knowingly skips
// (other events on the topics it reads) with Ignore. Anything else is poison: the Router
// returns a Permanent error, so the message is dead-lettered rather than silently dropped.
// Register everything before the Router handles its first message.
type Router struct {
	routes map[route]Handler
}

type route struct {
	eventType string
	version   int
}

// NewRouter returns an empty Router.
func NewRouter() *Router {
	return &Router{routes: make(map[route]Handler)}
}

// Handle registers h for eventType at version. Registering a pair twice panics (a programming error).
func (r *Router) Handle(eventType string, version int, h Handler) {
	k := route{eventType, version}
	if _, dup := r.routes[k]; dup {
		panic("messaging: route " + eventType + " v" + strconv.Itoa(version) + " registered twice")
	}
	r.routes[k] = h
}

// Ignore marks eventType at version as known but irrelevant to this service: such messages
// succeed without doing anything.
func (r *Router) Ignore(eventType string, version int) {
	r.Handle(eventType, version, func(context.Context, *Message) error { return nil })
}

// Dispatch runs the handler registered for m's event type and version. It is a Handler: pass
// router.Dispatch to Chain.
func (r *Router) Dispatch(ctx context.Context, m *Message) error {
	h, ok := r.routes[route{m.EventType, m.EventVersion}]
	if !ok {
		return Permanent(fmt.Errorf("route %s v%d (event %s): %w", m.EventType, m.EventVersion, m.EventID, ErrNoRoute))
	}
	return h(ctx, m)
}
