package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBalancerSkipsARefusingInstance: with one instance down (its port refuses), every POST
// reaches the other, body intact; with both up, the requests alternate.
func TestBalancerSkipsARefusingInstance(t *testing.T) {
	hits := map[string]int{}
	serve := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			hits[name]++
			_, _ = io.WriteString(w, name+":"+string(b))
		}))
	}
	a, b := serve("a"), serve("b")
	defer a.Close()
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused

	post := func(h http.Handler) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "http://proxy/orders", strings.NewReader(`{"x":1}`)))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := NewBalancer([]string{dead, strings.TrimPrefix(a.URL, "http://")}, log)
	for range 4 {
		if got := post(h); got != `a:{"x":1}` {
			t.Fatalf("got %q, want a:{\"x\":1}", got)
		}
	}
	h = NewBalancer([]string{strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://")}, log)
	hits = map[string]int{}
	for range 4 {
		post(h)
	}
	if hits["a"] != 2 || hits["b"] != 2 {
		t.Errorf("hits %v, want 2 and 2", hits)
	}
	h = NewBalancer([]string{dead}, log)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://proxy/healthz", nil))
	if rec.Code != http.StatusBadGateway {
		t.Errorf("no instance: status %d, want 502", rec.Code)
	}
}
