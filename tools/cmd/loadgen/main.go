// Command loadgen places orders on the running pipeline at a fixed rate and records every
// accepted order (and its SKUs' initial stock) to a JSON file for the checker:
//
//	go run ./cmd/loadgen -rate 20 -count 600 -duration 1m -out /tmp/orders.json
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"outboxsaga.dev/tools/stackenv"
	"time"

	"outboxsaga.dev/tools/load"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := load.Config{Progress: os.Stdout}
	out := flag.String("out", "orders.json", "where to write the record of accepted orders")
	flag.StringVar(&cfg.OrderURL, "order", stackenv.DefaultURL("order"), "order service URL")
	flag.StringVar(&cfg.InventoryURL, "inventory", stackenv.DefaultURL("inventory"), "inventory service URL")
	flag.Float64Var(&cfg.Rate, "rate", 20, "orders per second (open loop)")
	flag.IntVar(&cfg.Concurrency, "concurrency", 32, "requests in flight at most")
	flag.IntVar(&cfg.Count, "count", 600, "orders to place at most (0: no bound)")
	flag.DurationVar(&cfg.Duration, "duration", time.Minute, "how long to place orders at most (0: no bound)")
	flag.Parse()
	cfg.AdminToken = stackenv.Load().AdminToken // ADMIN_TOKEN, else the stack's .stack/admin-token
	customers, err := stackenv.LoadCustomers()  // CUSTOMER_TOKEN_PRIVATE_KEY, else the stack's key
	if err != nil {
		return err
	}
	cfg.Customers = customers
	if cfg.Count == 0 && cfg.Duration == 0 {
		return fmt.Errorf("set -count or -duration: the run must be bounded")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rec, err := load.New(cfg).Run(ctx)
	if err != nil {
		return err
	}
	if err := rec.Save(*out); err != nil {
		return err
	}
	fmt.Printf("loadgen: %d sent, %d accepted, %d errors, %d rejected; record in %s\n",
		rec.Stats.Sent, rec.Stats.Accepted, rec.Stats.Errors, rec.Stats.Rejected, *out)
	return nil
}
