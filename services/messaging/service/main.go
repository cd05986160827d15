package service

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
)

// ListenAddr is the address a service's HTTP server listens on.
func (c Config) ListenAddr() string { return c.HTTPAddr }

// Main is the whole main function of a service's command: it loads the configuration, listens on
// its address, runs the service until SIGINT or SIGTERM, and exits once: 0 after a clean stop, 1
// with the error on stderr otherwise.
//
//	func main() { service.Main(app.Service, app.LoadConfig, app.Run) }
func Main[C interface{ ListenAddr() string }](name string, load func() (C, error), run func(context.Context, C, net.Listener, zerolog.Logger) error) {
	if err := serve(load, run); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serve[C interface{ ListenAddr() string }](load func() (C, error), run func(context.Context, C, net.Listener, zerolog.Logger) error) error {
	cfg, err := load()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr(), err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, cfg, ln, zerolog.New(os.Stderr).With().Timestamp().Logger())
}
