// Package servicetest is the test kit of a service's app package: it runs the whole service on a
// listener of its own and checks what it answers.
package servicetest

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// ClearEnv unsets, for the test, every variable of the service (prefix, e.g. "ORDER_") and the
// shared ones the services read (ADMIN_TOKEN, CONNECT_STATUS_TOPIC): make test exports the stack's
// settings, which would otherwise override the defaults under test.
func ClearEnv(tb testing.TB, prefix string) {
	tb.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, prefix) || k == "ADMIN_TOKEN" || k == "CONNECT_STATUS_TOPIC" {
			tb.Setenv(k, "") // restores the value after the test
			os.Unsetenv(k)
		}
	}
}

// Start runs run (a service's wiring.Run, bound to its configuration) on a listener of
// 127.0.0.1:0 and returns the service's base URL. Requests wait in the listener's backlog until
// the service serves. It stops the service like Run.
func Start(tb testing.TB, run func(ctx context.Context, ln net.Listener) error) (base string, stop func() time.Duration) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return "http://" + ln.Addr().String(), Run(tb, func(ctx context.Context) error { return run(ctx, ln) })
}

// Run runs run in the background. When the test ends it cancels run's context and fails unless
// run returns nil within 30 s; stop does the same earlier and returns how long the stop took.
func Run(tb testing.TB, run func(ctx context.Context) error) (stop func() time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopped := false
	stop = func() time.Duration {
		tb.Helper()
		if stopped {
			return 0
		}
		stopped = true
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("returned %v after its context was canceled, want nil", err)
			}
		case <-time.After(30 * time.Second):
			tb.Error("did not stop within 30 s of its context being canceled")
		}
		return time.Since(start)
	}
	tb.Cleanup(func() { stop() })
	return stop
}

// Request is one request to a running service and what it must answer.
type Request struct {
	Method, Path string
	Auth         string // the Authorization header ("" for none)
	Body         string // sent as application/json when set
	Want         int
	WantBody     string // a part of the answer's body
}

// Expect sends each request to the service at base and fails the test for every answer that is
// not what the request wants.
func Expect(tb testing.TB, base string, reqs ...Request) {
	tb.Helper()
	for _, r := range reqs {
		status, body := Call(tb, r.Method, base+r.Path, r.Body, map[string]string{"Authorization": r.Auth})
		if status != r.Want || !strings.Contains(body, r.WantBody) {
			tb.Errorf("%s %s = %d %.300s; want %d containing %q", r.Method, r.Path, status, body, r.Want, r.WantBody)
		}
	}
}

// Call sends one request (body as application/json when set; empty headers are left out) and
// returns the status and the body.
func Call(tb testing.TB, method, url, body string, headers map[string]string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}
