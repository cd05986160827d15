package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/messaging/debezium"
	"outboxsaga.dev/tools/invariant"
	"outboxsaga.dev/tools/load"
	"outboxsaga.dev/tools/stackenv"
	"outboxsaga.dev/tools/supervisor"
)

// TestKillsUnderLoad is the cluster's check. Under a steady load:
//  1. SIGKILL one broker: orders keep being accepted and completing; restart it.
//  2. SIGKILL the Connect worker that runs the most tasks: its connectors move to the other
//     worker, which runs every task; restart it.
//  3. (not with -short) SIGKILL two brokers at once: production stops (acks=all cannot reach
//     min.insync.replicas=2, and no quorum elects leaders), orders are still accepted, none
//     completes; restart both: every order completes.
//
// Then every accepted order is terminal and the invariants hold (0 violations); the Kafka-level
// duplicates are logged.
func TestKillsUnderLoad(t *testing.T) {
	if !Enabled() {
		t.Skip("TOPOLOGY is not cluster: the check runs on TOPOLOGY=cluster make up")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := supervisor.ConfigFromEnv(root, os.Environ())
	if err != nil {
		t.Fatalf("%v (run with scripts/lib.sh's settings: see doc.go)", err)
	}
	cfg.Out, cfg.Err = testWriter{t}, testWriter{t}
	cfg.Terminal = false
	sup := supervisor.New(cfg)
	env := stackenv.Load()
	customers, err := stackenv.LoadCustomers()
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := Nodes()
	if err != nil {
		t.Fatal(err)
	}
	workers, err := Workers()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 18*time.Minute)
	defer cancel()
	// The short variant (make test) waits less at each step.
	wait := func(long, short time.Duration) {
		if testing.Short() {
			long = short
		}
		sleep(ctx, long)
	}

	// The load: 5 orders a second for the whole check.
	loadCtx, stopLoad := context.WithCancel(ctx)
	gen := load.New(load.Config{OrderURL: env.OrderURL, InventoryURL: env.InventoryURL, AdminToken: env.AdminToken,
		Customers: customers, Rate: 5, Concurrency: 16, Duration: 15 * time.Minute})
	type result struct {
		rec *load.Record
		err error
	}
	done := make(chan result, 1)
	go func() { rec, err := gen.Run(loadCtx); done <- result{rec, err} }()
	stats := func(what string) load.Stats {
		s := gen.Stats()
		t.Logf("%s: sent %d accepted %d errors %d dropped %d", what, s.Sent, s.Accepted, s.Errors, s.Dropped)
		return s
	}
	wait(20*time.Second, 10*time.Second)
	before := stats("before the kills")

	// 1. A broker: the active controller.
	ctrl, err := ActiveController(cfg.StackDir, nodes)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := sup.Kill(ctrl.Name); err != nil {
		t.Fatalf("SIGKILL %s: %v", ctrl.Name, err)
	}
	t.Logf("SIGKILL %s (the active controller)", ctrl.Name)
	wait(30*time.Second, 20*time.Second)
	during := stats("with " + ctrl.Name + " down")
	if during.Accepted-before.Accepted < 50 {
		t.Errorf("with a broker down, %d orders accepted in 20 s or more at 5/s", during.Accepted-before.Accepted)
	}
	if err := sup.Start(ctx, ctrl.Name); err != nil {
		t.Fatalf("restart %s: %v", ctrl.Name, err)
	}
	t.Logf("%s back after %s", ctrl.Name, time.Since(t0).Round(time.Second))
	wait(10*time.Second, 5*time.Second)

	// 2. The worker that runs the most tasks.
	victim, most, err := Busiest(ctx, env.ConnectRESTUser, env.ConnectRESTPassword, workers)
	if err != nil {
		t.Fatal(err)
	}
	var survivor Worker
	for _, w := range workers {
		if w != victim {
			survivor = w
		}
	}
	t.Logf("SIGKILL %s (%s, %d tasks)", victim.Name, victim.ID(), most)
	t1 := time.Now()
	if _, err := sup.Kill(victim.Name); err != nil {
		t.Fatalf("SIGKILL %s: %v", victim.Name, err)
	}
	connect := debezium.NewClient(survivor.URL(), env.ConnectRESTUser, env.ConnectRESTPassword)
	moved := false
	for time.Since(t1) < 3*time.Minute && ctx.Err() == nil {
		st, err := connect.Statuses(ctx)
		if err == nil && AllRunningOn(st, survivor) {
			moved = true
			break
		}
		sleep(ctx, 2*time.Second)
	}
	if !moved {
		t.Errorf("the connectors did not all run on %s within 3 minutes of the SIGKILL", survivor.Name)
	} else {
		t.Logf("every connector and task RUNNING on %s %s after the SIGKILL", survivor.Name, time.Since(t1).Round(time.Second))
	}
	wait(20*time.Second, 10*time.Second)
	after := stats("after the worker kill")
	if after.Accepted <= during.Accepted {
		t.Errorf("no order accepted after the broker kill")
	}
	if err := sup.Start(ctx, victim.Name); err != nil {
		t.Fatalf("restart %s: %v", victim.Name, err)
	}

	// 3. Two brokers at once.
	var stopped stall
	if !testing.Short() {
		wait(20*time.Second, 0)
		stopped = twoBrokersDown(ctx, t, sup, nodes, stats)
	}
	wait(20*time.Second, 10*time.Second)
	stopLoad()
	res := <-done
	if res.err != nil {
		t.Fatalf("load: %v", res.err)
	}
	rec := res.rec
	t.Logf("load: %d orders accepted, %d POSTs failed (of %d)", len(rec.Orders), rec.Stats.Errors, rec.Stats.Sent)

	// The invariants, once the pipeline is quiet.
	kc, err := invariant.NewKafkaClient(env.As(stackenv.Viewer))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	c := &invariant.Checker{Endpoints: invariant.Endpoints{Env: env.As(stackenv.Viewer)}, Kafka: kc, MaxSlotLag: 1 << 20, Log: testWriter{t}}
	if err := c.Quiesce(ctx, rec, 4*time.Minute); err != nil {
		t.Logf("quiescence: %v (checking anyway)", err)
	} else if _, err := c.SettledSnapshot(ctx, rec, 3*time.Second, 3*time.Minute); err != nil {
		t.Logf("quiescence: %v (checking anyway)", err)
	}
	if !stopped.from.IsZero() {
		stopped.check(ctx, t, c, rec)
	}
	r, err := c.Check(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	r.Print(&b)
	t.Log(b.String())
	t.Logf("Kafka-level duplicates: %d", r.KafkaDuplicates)
	if !r.OK() {
		t.Errorf("%d violations", len(r.Violations))
	}
}

// stall is the window in which two brokers were down and no saga may have progressed.
type stall struct {
	from, to time.Time
}

// twoBrokersDown SIGKILLs the two nodes other than the first for 20 s: the remaining node cannot
// take a write (min.insync.replicas=2) and has no quorum to elect leaders, so every saga stops
// where it is while the order service keeps accepting orders into its outbox. It returns the
// window, from 8 s after the kill (what was in flight settles) to the restart, in which no order
// may become terminal; the orders accepted then are checked after the restart (all terminal,
// invariants) like every other.
func twoBrokersDown(ctx context.Context, t *testing.T, sup *supervisor.Stack, nodes []Node, stats func(string) load.Stats) stall {
	victims := []string{nodes[1].Name, nodes[2].Name}
	before := stats("before two brokers down")
	killed := time.Now()
	for _, v := range victims {
		if _, err := sup.Kill(v); err != nil {
			t.Fatalf("SIGKILL %s: %v", v, err)
		}
	}
	t.Logf("SIGKILL %s and %s: one node of three left", victims[0], victims[1])
	sleep(ctx, 20*time.Second)
	down := stats("20 s with two brokers down")
	if down.Accepted-before.Accepted < 50 {
		t.Errorf("with two brokers down, %d orders accepted in 20 s at 5/s: the order service must keep accepting (its outbox holds them)", down.Accepted-before.Accepted)
	}
	s := stall{from: killed.Add(8 * time.Second), to: time.Now()}
	if err := sup.Start(ctx, victims...); err != nil {
		t.Fatalf("restart %s: %v", strings.Join(victims, ", "), err)
	}
	t.Logf("%s and %s back after %s", victims[0], victims[1], time.Since(killed).Round(time.Second))
	return s
}

// check fails the test when an order became terminal inside the window through the saga (an
// event that crossed Kafka: production did not stop), and logs how many orders were accepted in it.
func (s stall) check(ctx context.Context, t *testing.T, c *invariant.Checker, rec *load.Record) {
	snap, err := c.TakeSnapshot(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	accepted, terminalIn := 0, 0
	for _, o := range rec.Orders {
		if o.AcceptedAt.After(s.from) && o.AcceptedAt.Before(s.to) {
			accepted++
		}
	}
	timedOut := 0
	for _, o := range snap.Orders {
		if !o.UpdatedAt.After(s.from) || !o.UpdatedAt.Before(s.to) {
			continue
		}
		switch {
		case o.Status == "CANCELED" && o.Reason == "TIMEOUT":
			// The order service's own deadline (30 s without the saga's next event): it needs no
			// Kafka, and an order waiting for the stopped pipeline is canceled by it.
			timedOut++
		case o.Status == "COMPLETED" || o.Status == "CANCELED":
			terminalIn++
		}
	}
	t.Logf("two brokers down: %d orders accepted from 8 s after the kill to the restart (%s); in that window %d became terminal through the saga, %d were canceled by their deadline",
		accepted, s.to.Sub(s.from).Round(time.Second), terminalIn, timedOut)
	if terminalIn > 0 {
		t.Errorf("%d orders became terminal while two of three brokers were down: production should have stopped", terminalIn)
	}
	if accepted == 0 {
		t.Errorf("no order accepted while two brokers were down")
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// testWriter sends lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
