// Command checker waits until the pipeline is quiet, then checks the four invariants of
// DESIGN.md for the orders and SKUs recorded by loadgen; it exits 1 on any violation:
//
//	go run ./cmd/checker -record /tmp/orders.json
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"outboxsaga.dev/tools/invariant"
	"outboxsaga.dev/tools/load"
	"outboxsaga.dev/tools/stackenv"
)

func main() {
	ok, err := run()
	invariant.Exit("checker", ok, err)
}

func run() (bool, error) {
	path := flag.String("record", "orders.json", "record written by loadgen")
	timeout := flag.Duration("timeout", 3*time.Minute, "how long to wait for quiescence")
	maxSlotLag := flag.Int64("max-slot-lag", 1<<20, "slot lag (bytes) that counts as quiet")
	flag.Parse()
	rec, err := load.ReadRecord(*path)
	if err != nil {
		return false, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	eps := EndpointsFromEnv()
	kc, err := invariant.NewKafkaClient(eps.Env)
	if err != nil {
		return false, err
	}
	defer kc.Close()
	c := &invariant.Checker{Endpoints: eps, Kafka: kc, MaxSlotLag: *maxSlotLag, Log: os.Stdout}
	if err := c.Quiesce(ctx, rec, *timeout); err != nil {
		fmt.Println("checker: quiescence:", err, "(checking anyway)")
	} else if _, err := c.SettledSnapshot(ctx, rec, 3*time.Second, *timeout); err != nil {
		fmt.Println("checker: quiescence:", err, "(checking anyway)")
	}
	res, err := c.Check(ctx, rec)
	if err != nil {
		return false, err
	}
	res.Print(os.Stdout)
	return res.OK(), nil
}

// EndpointsFromEnv reads the stack's addresses the way scripts/lib.sh exports them; the checker
// reads Kafka as the read-only viewer.
func EndpointsFromEnv() invariant.Endpoints {
	return invariant.Endpoints{Env: stackenv.Load().As(stackenv.Viewer)}
}
