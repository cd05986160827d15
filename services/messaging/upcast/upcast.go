// Package upcast is the project's one upcaster: it brings an event of an older version to the
// latest version of its type, so that every consumer (and the order service's fold) reads every
// version through the same code, and no service converts versions on its own.
//
// The chain of steps is the project's history of its event schemas (schemas/): a step takes the
// data of version N to version N+1. The compatibility rule (docs/architecture.md, "The order is
// event-sourced"; schemas/compat_test.go) allows a new version to add optional fields only, so a
// step has little to do: an OrderCreated v1 is an OrderCreated v2 placed before channels existed
// (no channel). A rule that allowed more (a renamed field, a new required one with a default)
// would put its conversion here, once.
//
// Deploy order: consumers first (a consumer that knows version N+1 reads N and N+1), then
// producers.
package upcast

import (
	"encoding/json"
	"fmt"
)

// Step converts the data of one version of an event type to the next version.
type Step func(data json.RawMessage) (json.RawMessage, error)

type key struct {
	eventType string
	from      int
}

// Upcaster holds the steps from each version of each event type to the next. It is safe for
// concurrent use once built.
type Upcaster struct {
	steps  map[key]Step
	latest map[string]int
}

// New returns the project's upcaster: every step of every event type that has more than one
// version.
func New() *Upcaster {
	u := &Upcaster{steps: make(map[key]Step), latest: make(map[string]int)}
	// OrderCreated v2 adds the optional channel (web, app, api). A v1 order was placed before the
	// order service knew channels: it has none, and that is what v2 says by leaving it out.
	u.register("OrderCreated", 1, same)
	return u
}

// same is the step of a version that only adds optional fields: the data stays as it is.
func same(data json.RawMessage) (json.RawMessage, error) { return data, nil }

// register adds the step from version from of eventType to from+1.
func (u *Upcaster) register(eventType string, from int, s Step) {
	u.steps[key{eventType, from}] = s
	if u.latest[eventType] < from+1 {
		u.latest[eventType] = from + 1
	}
}

// Latest returns the latest version of eventType the upcaster knows: the version consumers
// register their handler at. A type without steps is at version 1.
func (u *Upcaster) Latest(eventType string) int {
	if v, ok := u.latest[eventType]; ok {
		return v
	}
	return 1
}

// Upcast returns data of eventType at version brought to the latest version, and that version.
// A version newer than the latest known one is returned as it is (the Router then refuses it as
// unknown: poison).
func (u *Upcaster) Upcast(eventType string, version int, data json.RawMessage) (json.RawMessage, int, error) {
	for version < u.Latest(eventType) {
		s, ok := u.steps[key{eventType, version}]
		if !ok {
			return nil, version, fmt.Errorf("upcast %s v%d: no step to v%d", eventType, version, version+1)
		}
		var err error
		if data, err = s(data); err != nil {
			return nil, version, fmt.Errorf("upcast %s v%d: %w", eventType, version, err)
		}
		version++
	}
	return data, version, nil
}
