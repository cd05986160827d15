package httpapi_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/messaging/httpapi"
)

func TestCheckHost(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		host    string
		want    int
	}{
		{"127.0.0.1 with port", nil, "127.0.0.1:8080", http.StatusOK},
		{"127.0.0.1", nil, "127.0.0.1", http.StatusOK},
		{"localhost", nil, "localhost:8080", http.StatusOK},
		{"LOCALHOST", nil, "LOCALHOST:8080", http.StatusOK},
		{"[::1] with port", nil, "[::1]:8080", http.StatusOK},
		{"[::1]", nil, "[::1]", http.StatusOK},
		{"empty (HTTP/1.0)", nil, "", http.StatusOK},
		{"a rebinding name", nil, "evil.example:8080", http.StatusMisdirectedRequest},
		{"a rebinding name without port", nil, "evil.example", http.StatusMisdirectedRequest},
		{"localhost as a suffix", nil, "localhost.evil.example", http.StatusMisdirectedRequest},
		{"another loopback address", nil, "127.0.0.2:8080", http.StatusMisdirectedRequest},
		{"0.0.0.0", nil, "0.0.0.0:8080", http.StatusMisdirectedRequest},
		{"a compose service name, allowed", []string{"order", " inventory "}, "inventory:8081", http.StatusOK},
		{"allowed names are case-insensitive", []string{"Order"}, "order:8080", http.StatusOK},
		{"a compose service name, not allowed", []string{"order"}, "payment:8082", http.StatusMisdirectedRequest},
		{"empty entries allow nothing more", []string{"", " "}, "evil.example", http.StatusMisdirectedRequest},
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			req.Host = tt.host
			w := httptest.NewRecorder()
			httpapi.CheckHost(tt.allowed)(ok).ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("Host %q: %d, want %d", tt.host, w.Code, tt.want)
			}
			if tt.want == http.StatusMisdirectedRequest && !strings.Contains(w.Body.String(), `"code":"bad_host"`) {
				t.Fatalf("Host %q: body %s, want code bad_host", tt.host, w.Body)
			}
		})
	}
}

// TestNewServerChecksTheHost serves through NewServer, as every program of the project does.
func TestNewServerChecksTheHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		httpapi.Limits{AllowedHosts: []string{"order"}})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for host, want := range map[string]int{"": http.StatusOK, "order:8080": http.StatusOK, "evil.example": http.StatusMisdirectedRequest} {
		req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, res.StatusCode, want)
		}
	}
}

func TestLimitsListenerCapsConnections(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := httpapi.Limits{MaxConnections: 1}.Listener(inner)
	defer ln.Close()
	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	first := <-accepted
	dial()
	select {
	case <-accepted:
		t.Fatal("a second connection was accepted while the first was open (cap 1)")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the second connection was not accepted after the first closed")
	}
}
