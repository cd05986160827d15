// Command proxy is the cluster topology's reverse proxy (TOPOLOGY=cluster make up; the supervisor
// starts it as the component proxy): on each saga service's usual address it forwards every
// request to one of the service's instances, in turn, so that the clients, the tools, the console
// and Prometheus keep one address per service while two instances serve it.
//
//	proxy -route <service's address>=<instance 1's>,<instance 2's> [-route ...] [-stack DIR]
//
// (the supervisor gives it one route per saga service, the addresses from the stack table.)
//
// An instance that refuses the connection (killed, restarting) is skipped: the request goes to
// the next one, which is safe for every method, a POST included, since the refused instance
// received nothing. A request an instance took and then failed is not retried (502): it may have
// taken effect. -stack only names the stack the proxy serves (the supervisor finds its process by
// it).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
}

// routes is the repeated -route flag: listen address → instance addresses.
type routes map[string][]string

func (r routes) String() string { return fmt.Sprint(map[string][]string(r)) }

func (r routes) Set(v string) error {
	listen, backends, ok := strings.Cut(v, "=")
	if !ok || listen == "" || backends == "" {
		return fmt.Errorf("route %q: want listen=backend[,backend...]", v)
	}
	r[listen] = strings.Split(backends, ",")
	return nil
}

// maxBody bounds a request's body, which the proxy holds to send it again to the next instance
// (the services take at most 1 MiB: docs/architecture.md, "Size limits").
const maxBody = 2 << 20

func run() error {
	rs := routes{}
	flag.Var(rs, "route", "listen=backend[,backend...] (repeatable)")
	flag.String("stack", "", "the stack it serves (names the process)")
	flag.Parse()
	if len(rs) == 0 {
		return errors.New("no -route")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var servers []*http.Server
	errc := make(chan error, len(rs))
	for listen, backends := range rs {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("listen %s: %w", listen, err)
		}
		srv := &http.Server{Handler: NewBalancer(backends, log.With("listen", listen)), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		go func() { errc <- srv.Serve(ln) }()
		log.Info("proxying", "listen", listen, "backends", backends)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Shutdown(shutdown) }()
	}
	wg.Wait()
	return nil
}

// Balancer forwards each request to its backends in turn, skipping one that refuses the
// connection.
type Balancer struct {
	backends []string
	next     atomic.Uint64
	proxy    *httputil.ReverseProxy
}

// NewBalancer returns the balancer of backends (host:port each).
func NewBalancer(backends []string, log *slog.Logger) *Balancer {
	b := &Balancer{backends: backends}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	}
	b.proxy = &httputil.ReverseProxy{
		// The backend is chosen per attempt by the transport; the host stays the client's.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: backends[0]})
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:     &failover{b: b, rt: transport},
		FlushInterval: -1, // streams (server-sent events) pass at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Warn("no instance answered", "method", r.Method, "path", r.URL.Path, "err", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, `{"error":"no instance of the service answered","code":"bad_gateway"}`)
		},
	}
	return b
}

// ServeHTTP implements http.Handler.
func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.proxy.ServeHTTP(w, r) }

// failover sends a request to the backends in turn from the next one, until one takes the
// connection.
type failover struct {
	b  *Balancer
	rt http.RoundTripper
}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, maxBody+1))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read the request's body: %w", err)
		}
		if len(body) > maxBody {
			return &http.Response{StatusCode: http.StatusRequestEntityTooLarge, Status: "413 Request Entity Too Large",
				Header: http.Header{}, Body: http.NoBody, Request: req, ProtoMajor: 1, ProtoMinor: 1}, nil
		}
	}
	n := len(f.b.backends)
	start := int(f.b.next.Add(1) % uint64(n))
	var errs []error
	for k := range n {
		backend := f.b.backends[(start+k)%n]
		out := req.Clone(req.Context())
		out.URL.Host = backend
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.ContentLength = int64(len(body))
		}
		res, err := f.rt.RoundTrip(out)
		if err == nil {
			return res, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", backend, err))
		if !refused(err) {
			break // it may have taken the request: not sent again
		}
	}
	return nil, errors.Join(errs...)
}

// refused reports whether err is a failure to connect: the backend received nothing.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
