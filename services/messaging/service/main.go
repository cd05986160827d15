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
// `<service> migrate` applies the service's migrations as the owner role of
// <NAME>_MIGRATIONS_DATABASE_URL and exits: make up runs it before it starts the service, which
// then holds only its runtime role's password (see Run).
//
//	func main() { service.Main(wiring.Service, wiring.LoadConfig, wiring.Run) }
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
	switch args := os.Args[1:]; {
	case len(args) == 1 && args[0] == "migrate":
		// Run migrates and returns before it would serve: no listener.
		ctx := context.WithValue(context.Background(), migrateOnlyKey{}, true)
		return run(ctx, cfg, nil, zerolog.New(os.Stderr).With().Timestamp().Logger())
	case len(args) > 0:
		return fmt.Errorf("unknown arguments %q (the only command is migrate)", args)
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr(), err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, cfg, ln, zerolog.New(os.Stderr).With().Timestamp().Logger())
}

// migrateOnlyKey marks a context whose Run only migrates (the migrate command).
type migrateOnlyKey struct{}

// migrateOnly reports whether ctx asks Run only to migrate.
func migrateOnly(ctx context.Context) bool { return ctx.Value(migrateOnlyKey{}) != nil }

// Command runs a one-shot command of a service's binary (`order rebuild`, `catalog rebuild`) and
// returns its exit status: it loads the configuration, runs cmd until it returns or SIGINT or
// SIGTERM cancels its context, and returns 0 when cmd succeeds, 1 when it fails and 2 when the
// configuration cannot be read, the error on stderr after the service's name.
//
//	os.Exit(service.Command(wiring.Service, wiring.LoadConfig, func(ctx context.Context, cfg wiring.Config) error {
//		return wiring.Rebuild(ctx, cfg, os.Stdout)
//	}))
func Command[C any](name string, load func() (C, error), cmd func(context.Context, C) error) int {
	cfg, err := load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
