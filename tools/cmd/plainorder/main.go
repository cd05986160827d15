// Command plainorder places one plain order on the running stack and waits until it is COMPLETED
// (tools/plainorder): the smallest proof that the whole pipeline works.
//
//	go run ./cmd/plainorder [-timeout 120s]
//
// It finds the stack as every tool does (tools/stackenv: the environment scripts/lib.sh exports,
// else the offset-0 defaults and the secrets of .stack).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"outboxsaga.dev/tools/plainorder"
	"outboxsaga.dev/tools/stackenv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "plainorder:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("plainorder", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 120*time.Second, "how long the order may take to complete")
	if err := fs.Parse(args); err != nil {
		return err
	}
	customers, err := stackenv.LoadCustomers()
	if err != nil {
		return err
	}
	o := plainorder.New(stackenv.Load(), customers)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	t0 := time.Now()
	id, err := o.Place(ctx)
	if err != nil {
		return err
	}
	if err := o.Await(ctx, id); err != nil {
		return err
	}
	_, err = fmt.Printf("    plain order %s COMPLETED after %.1fs\n", id, time.Since(t0).Seconds())
	return err
}
