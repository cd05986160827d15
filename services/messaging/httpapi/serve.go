package httpapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Part is one long-running part of a service besides its HTTP server (the Kafka
// consumer, a sweeper, a listener). Run returns when ctx is done; returning earlier
// means the part failed, and the service stops.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
}

// ShutdownTimeout bounds how long in-flight HTTP requests get when a service stops.
const ShutdownTimeout = 5 * time.Second

// NewServer returns an http.Server with the timeouts every service uses that serves h behind
// CheckHost(lim.AllowedHosts). Serve it on lim.Listener(ln), which caps its connections.
func NewServer(h http.Handler, lim Limits) *http.Server {
	return &http.Server{
		Handler:           CheckHost(lim.AllowedHosts)(h),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second, // long-lived responses (streams) lift it for themselves
		IdleTimeout:       time.Minute,
	}
}

// Serve runs srv on ln (a listener of Limits.Listener, so that its connections are capped) and every part until ctx is canceled or one of them stops,
// then shuts the server down gracefully, waits for the parts and returns their
// errors (nil after a plain cancel).
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, parts ...Part) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(parts)+2)
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Go(func() {
			defer cancel() // one part stopping stops the service
			if err := p.Run(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", p.Name, err)
			} else if ctx.Err() == nil {
				errs <- fmt.Errorf("%s stopped unexpectedly", p.Name)
			}
		})
	}
	wg.Go(func() {
		defer cancel()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("http server: %w", err)
		}
	})

	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		errs <- fmt.Errorf("http shutdown: %w", err)
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// NewRegistry returns the Prometheus registry of one service process: Go runtime,
// process and connection-pool collectors; the service adds its own metrics to it and
// MountHealth serves it at /metrics. There is no global registry.
func NewRegistry(db *sql.DB, service string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db, service),
	)
	return reg
}
