// Package sinktest runs the webhook sink in-process for tests: the sink's own and those of its
// clients (the notification service's webhook client and saga steps). The sink is the real one,
// on a data file of the test's own, and can be stopped (like a SIGKILL: the listener and every
// connection close at once) and started again on the same address and file.
package sinktest

import (
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/webhooksig"
	"outboxsaga.dev/webhooksink"
	"outboxsaga.dev/webhooksink/httpapi"
)

// The secrets of a test sink whose Config leaves them empty.
const (
	// Secret verifies the POSTs' signatures (httpapi.Config.Secret).
	Secret = "whsec_c2lua3Rlc3Q6IHRoZSBrZXkgb2YgZXZlcnkgdGVzdCBzaW5r"
	// ReadToken opens GET /received (httpapi.Config.ReadToken).
	ReadToken = "sinktest-read-token"
)

// ReadHeaders are the headers of a GET /received to a sink with the default ReadToken.
func ReadHeaders() map[string]string {
	return map[string]string{"Authorization": "Bearer " + ReadToken}
}

// SignedHeaders returns the headers of a POST of body under Idempotency-Key key, signed with
// Secret as the notification service signs (webhook-id is the key).
func SignedHeaders(tb testing.TB, key string, body []byte) map[string]string {
	tb.Helper()
	k, err := webhooksig.ParseSecret(Secret)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	return map[string]string{
		"Idempotency-Key":          key,
		webhooksig.HeaderID:        key,
		webhooksig.HeaderTimestamp: strconv.FormatInt(now.Unix(), 10),
		webhooksig.HeaderSignature: webhooksig.Sign(k, key, now, body),
	}
}

// Sink is a webhook sink running in the test.
type Sink struct {
	// URL is the sink's base URL (http://127.0.0.1:<port>); POST to any path under it.
	URL  string
	tb   testing.TB
	cfg  httpapi.Config
	file string
	addr string

	mu    sync.Mutex
	srv   *http.Server
	store *webhooksink.Store
	keys  []string
}

// Start runs a sink configured by cfg (FailFirst, FailStatus; an empty Secret or ReadToken is
// this package's) on 127.0.0.1 and a fresh data file; it stops when the test ends.
func Start(tb testing.TB, cfg httpapi.Config) *Sink {
	tb.Helper()
	if cfg.Secret == "" {
		cfg.Secret = Secret
	}
	if cfg.ReadToken == "" {
		cfg.ReadToken = ReadToken
	}
	s := &Sink{tb: tb, cfg: cfg, file: filepath.Join(tb.TempDir(), "received.jsonl"), addr: "127.0.0.1:0"}
	s.Restart()
	s.URL = "http://" + s.addr
	tb.Cleanup(s.Stop)
	return s
}

// Restart starts the sink again after Stop: it reloads the data file and listens on the same
// address.
func (s *Sink) Restart() {
	s.tb.Helper()
	store, _, err := webhooksink.Open(s.file, 0)
	if err != nil {
		s.tb.Fatalf("open the sink's data: %v", err)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		store.Close()
		s.tb.Fatalf("listen on %s: %v", s.addr, err)
	}
	h, err := httpapi.NewHandler(store, s.cfg, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		store.Close()
		ln.Close()
		s.tb.Fatalf("sink handler: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			s.mu.Lock()
			s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
			s.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	s.mu.Lock()
	s.addr, s.srv, s.store = ln.Addr().String(), srv, store
	s.mu.Unlock()
}

// Stop kills the sink: its listener and connections close at once and its data file is closed.
// What it acknowledged stays in the file. Stopping a stopped sink does nothing.
func (s *Sink) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Close()
	s.store.Close()
	s.srv, s.store = nil, nil
}

// Received lists what the running sink holds for orderID ("" for everything), as GET /received.
func (s *Sink) Received(orderID string) []webhooksink.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store.List(orderID, httpapi.MaxLimit)
}

// Keys returns the Idempotency-Key of every POST the sink got, in order: refused and invalid
// ones too ("" for a POST without the header).
func (s *Sink) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}
