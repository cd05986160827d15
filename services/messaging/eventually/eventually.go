// Package eventually is the one way the project's tests wait for something that happens
// asynchronously (an event consumed, an order completed, a server listening).
package eventually

import (
	"testing"
	"time"
)

// Holds calls cond every 50 ms until it returns "" (the condition holds) and fails tb once timeout
// has passed, with cond's last description of what is still missing.
func Holds(tb testing.TB, timeout time.Duration, cond func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing := cond()
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %s", timeout, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
