// Command chaos runs the chaos scenario against the native stack (see package chaos) and writes
// its report; it exits 1 when an invariant broke or a phase found a problem:
//
//	go run ./cmd/chaos -cycles 20 -report ../docs/chaos
//	go run ./cmd/chaos -short -cycles 3 -report ../.stack/logs/chaos-short
//
// On the cluster topology (TOPOLOGY=cluster, from scripts/lib.sh) it kills the cluster's kinds of
// members (chaos.ClusterKinds) and writes REPORT-cluster.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"outboxsaga.dev/tools/chaos"
	"outboxsaga.dev/tools/cluster"
	"outboxsaga.dev/tools/invariant"
	"outboxsaga.dev/tools/stackenv"
)

func main() {
	ok, err := run()
	invariant.Exit("chaos", ok, err)
}

func run() (bool, error) {
	root := flag.String("root", "..", "the repository")
	cycles := flag.Int("cycles", 20, "kill cycles")
	rate := flag.Float64("rate", 15, "background load, orders per second")
	short := flag.Bool("short", false, "the short variant of make test")
	outage := flag.Duration("wal-outage", 40*time.Second, "how long Connect stays down for the WAL measurement")
	webhook := flag.Duration("webhook-outage", 30*time.Second, "how long the webhook sink stays down (0: not stopped)")
	fuzz := flag.Int("fuzz", 1500, "live API fuzz requests")
	report := flag.String("report", "", "directory for REPORT.md and timeline.png (default <root>/docs/chaos)")
	seed := flag.Uint64("seed", 0, "random seed (0: from the clock)")
	budget := flag.Duration("budget", 0, "stop cycling after this long (0: run every cycle)")
	flag.Parse()
	absRoot, err := filepath.Abs(*root)
	if err != nil {
		return false, fmt.Errorf("root: %w", err)
	}
	if *report == "" {
		*report = filepath.Join(absRoot, "docs", "chaos")
	}
	stackDir := stackenv.Or("STACK_DIR", filepath.Join(absRoot, ".stack"))
	keep, err := chaos.MaxSlotWALKeep(filepath.Join(absRoot, "infra", "postgres", "postgresql.conf"))
	if err != nil {
		return false, err
	}
	// The test-only principal: the chaos run writes poison and duplicates and resets groups.
	eps := invariant.Endpoints{Env: stackenv.Load().As(stackenv.Injector)}
	stack := &chaos.Stack{Root: absRoot, StackDir: stackDir}
	stack.Log = func(format string, args ...any) { fmt.Printf("chaos: "+format+"\n", args...) }
	r, err := chaos.NewRunner(chaos.Config{
		Stack: stack, Endpoints: eps, Cycles: *cycles, Rate: *rate, Short: *short,
		WALOutage: *outage, WebhookOutage: *webhook, FuzzRequests: *fuzz, ReportDir: *report, MaxSlotWALKeep: keep,
		Seed: *seed, Budget: *budget, Out: os.Stdout, Cluster: cluster.Enabled(),
	})
	if err != nil {
		return false, err
	}
	defer r.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out, runErr := r.Run(ctx)
	if out != nil && out.Result != nil {
		out.Result.Print(os.Stdout)
		if err := chaos.WriteReport(out, *report); err != nil {
			return false, err
		}
		file, _ := out.ReportFiles()
		fmt.Printf("chaos: report in %s\n", filepath.Join(*report, file))
	}
	if runErr != nil {
		return false, runErr
	}
	return out.Passed(), nil
}
