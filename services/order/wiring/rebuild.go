package wiring

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"outboxsaga.dev/messaging/upcast"
	"outboxsaga.dev/order/postgres"
)

// ErrDifferences is what Rebuild returns when the projection differed from the event store.
var ErrDifferences = errors.New("the projection differs from the event store")

// Rebuild is `order rebuild [-swap]` (make rebuild): it folds every order of the event store into
// fresh tables as the owner role of ORDER_MIGRATIONS_DATABASE_URL (else ORDER_DATABASE_URL),
// compares them with the live projection, prints `order: rebuilt N orders: D differences` (and
// the differing ids) to out, and with -swap puts the rebuilt rows in place of the differing ones.
// It returns ErrDifferences when D > 0, repaired or not.
func Rebuild(ctx context.Context, cfg Config, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	fs.SetOutput(out)
	swap := fs.Bool("swap", false, "put the rebuilt rows in place of the differing live ones")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := cfg.OpenOwner(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer db.Close()
	start := time.Now()
	rep, err := postgres.Rebuild(ctx, db, upcast.New(), *swap)
	if err != nil {
		return err
	}
	for _, id := range rep.Differences {
		fmt.Fprintf(out, "order: differs: %s\n", id)
	}
	if rep.Swapped {
		fmt.Fprintf(out, "order: the rebuilt rows of the %d differing orders are in place\n", len(rep.Differences))
	}
	fmt.Fprintf(out, "order: took %s\n", time.Since(start).Round(time.Millisecond))
	// The line DESIGN fixes, last: `<service>: rebuilt N <things>: D differences`.
	fmt.Fprintf(out, "order: rebuilt %d orders: %d differences\n", rep.Orders, len(rep.Differences))
	if len(rep.Differences) > 0 {
		return ErrDifferences
	}
	return nil
}
