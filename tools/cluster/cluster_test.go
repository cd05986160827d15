package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/tools/invariant"
	"outboxsaga.dev/tools/load"
	"outboxsaga.dev/tools/stackenv"
	"outboxsaga.dev/tools/supervisor"
)

// TestBrokerAndWorkerKill: under a steady load, SIGKILL one broker (kafka-2): orders keep being
// accepted and completing; restart it. Then SIGKILL the Connect worker that runs the most tasks:
// its connectors move to the other worker, which runs every task; restart it. Then every accepted
// order is terminal and the invariants hold (0 violations); the Kafka-level duplicates are logged.
func TestBrokerAndWorkerKill(t *testing.T) {
	if os.Getenv("TOPOLOGY") != "cluster" {
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
	ctx, cancel := context.WithTimeout(context.Background(), 18*time.Minute)
	defer cancel()

	// The load: 5 orders a second for the whole check.
	loadCtx, stopLoad := context.WithCancel(ctx)
	gen := load.New(load.Config{OrderURL: env.OrderURL, InventoryURL: env.InventoryURL, AdminToken: env.AdminToken,
		Customers: customers, Rate: 5, Concurrency: 16, Duration: 10 * time.Minute})
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
	sleep(ctx, 20*time.Second)
	before := stats("before the kills")

	// 1. A broker.
	t0 := time.Now()
	if _, err := sup.Kill("kafka-2"); err != nil {
		t.Fatalf("SIGKILL kafka-2: %v", err)
	}
	t.Logf("SIGKILL kafka-2")
	sleep(ctx, 30*time.Second)
	during := stats("30 s with kafka-2 down")
	if during.Accepted-before.Accepted < 50 {
		t.Errorf("with a broker down, %d orders accepted in 30 s at 5/s", during.Accepted-before.Accepted)
	}
	if err := sup.Start(ctx, "kafka-2"); err != nil {
		t.Fatalf("restart kafka-2: %v", err)
	}
	t.Logf("kafka-2 back after %s", time.Since(t0).Round(time.Second))
	sleep(ctx, 10*time.Second)

	// 2. The worker that runs the most tasks.
	connect := connectClient{user: env.ConnectRESTUser, password: env.ConnectRESTPassword}
	workers := map[string]string{} // worker id (host:port) → component
	for _, f := range strings.Fields(os.Getenv("CONNECT_WORKERS")) {
		name, port, _ := strings.Cut(f, ":")
		workers["127.0.0.1:"+port] = name
	}
	tasks, err := connect.tasksByWorker(ctx, workerURLs(workers))
	if err != nil {
		t.Fatal(err)
	}
	victim, most := "", -1
	for w, n := range tasks {
		if n > most {
			victim, most = w, n
		}
	}
	survivor := ""
	for w := range workers {
		if w != victim {
			survivor = w
		}
	}
	t.Logf("tasks per worker: %v; SIGKILL %s (%s, %d tasks)", tasks, workers[victim], victim, most)
	t1 := time.Now()
	if _, err := sup.Kill(workers[victim]); err != nil {
		t.Fatalf("SIGKILL %s: %v", workers[victim], err)
	}
	moved := false
	for time.Since(t1) < 3*time.Minute && ctx.Err() == nil {
		st, err := connect.statuses(ctx, "http://"+survivor)
		if err == nil && allRunningOn(st, survivor) {
			moved = true
			break
		}
		sleep(ctx, 2*time.Second)
	}
	if !moved {
		t.Errorf("the connectors did not all run on %s within 3 minutes of the SIGKILL", survivor)
	} else {
		t.Logf("every connector and task RUNNING on %s %s after the SIGKILL", survivor, time.Since(t1).Round(time.Second))
	}
	sleep(ctx, 20*time.Second)
	after := stats("after the worker kill")
	if err := sup.Start(ctx, workers[victim]); err != nil {
		t.Fatalf("restart %s: %v", workers[victim], err)
	}
	sleep(ctx, 20*time.Second)
	stopLoad()
	res := <-done
	if res.err != nil {
		t.Fatalf("load: %v", res.err)
	}
	rec := res.rec
	t.Logf("load: %d orders accepted, %d POSTs failed (of %d)", len(rec.Orders), rec.Stats.Errors, rec.Stats.Sent)
	if after.Accepted <= during.Accepted {
		t.Errorf("no order accepted after the broker kill")
	}

	// 3. The invariants, once the pipeline is quiet.
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

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func workerURLs(workers map[string]string) []string {
	var out []string
	for w := range workers {
		out = append(out, "http://"+w)
	}
	return out
}

// connectStatus is a connector's status as GET /connectors?expand=status gives it.
type connectStatus struct {
	Connector struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
	} `json:"connector"`
	Tasks []struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
	} `json:"tasks"`
}

type connectClient struct{ user, password string }

func (c connectClient) statuses(ctx context.Context, base string) (map[string]connectStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/connectors?expand=status", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.user, c.password)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/connectors: %s %s", base, res.Status, raw)
	}
	var body map[string]struct {
		Status connectStatus `json:"status"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("decode connector statuses: %w", err)
	}
	out := map[string]connectStatus{}
	for name, v := range body {
		out[name] = v.Status
	}
	return out, nil
}

// tasksByWorker counts the tasks each worker runs (asked of the first worker that answers).
func (c connectClient) tasksByWorker(ctx context.Context, bases []string) (map[string]int, error) {
	var last error
	for _, b := range bases {
		st, err := c.statuses(ctx, b)
		if err != nil {
			last = err
			continue
		}
		out := map[string]int{}
		for _, s := range st {
			for _, task := range s.Tasks {
				out[task.WorkerID]++
			}
		}
		return out, nil
	}
	return nil, last
}

// allRunningOn: every connector and task RUNNING, all on worker.
func allRunningOn(st map[string]connectStatus, worker string) bool {
	if len(st) == 0 {
		return false
	}
	for _, s := range st {
		if s.Connector.State != "RUNNING" || s.Connector.WorkerID != worker || len(s.Tasks) == 0 {
			return false
		}
		for _, task := range s.Tasks {
			if task.State != "RUNNING" || task.WorkerID != worker {
				return false
			}
		}
	}
	return true
}

// testWriter sends lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
