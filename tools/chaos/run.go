// Package chaos runs the pipeline under load while it kills and restarts its components, replays
// every topic, injects poison and duplicates, runs a second instance of each consumer, stops
// Connect to measure the WAL a slot keeps, stops the webhook sink, and fuzzes the live API; then it checks the invariants
// and writes a report with a timeline plot.
package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/tools/invariant"
	"outboxsaga.dev/tools/load"
	"outboxsaga.dev/tools/stackenv"
)

// Config is one chaos run.
type Config struct {
	Stack     *Stack
	Endpoints invariant.Endpoints
	Cycles    int
	// Rate is the background load in orders per second.
	Rate float64
	// Short is the variant inside `make test`: no second instances, a short WAL outage, little fuzz.
	Short bool
	// WALOutage is how long Connect stays down for the WAL measurement.
	WALOutage time.Duration
	// WebhookOutage is how long the webhook sink stays down (0: not stopped).
	WebhookOutage time.Duration
	// FuzzRequests is how many random requests the live fuzz sends.
	FuzzRequests int
	// Budget bounds the kill cycles' time: when it is spent, the run stops cycling (0: no bound)
	// and the report says how many cycles ran.
	Budget time.Duration
	// ReportDir takes REPORT.md and timeline.png.
	ReportDir string
	// MaxSlotWALKeep is max_slot_wal_keep_size in bytes (from infra/postgres/postgresql.conf).
	MaxSlotWALKeep int64
	Seed           uint64
	Out            io.Writer
}

// Kill is one kill of a component and its recovery.
type Kill struct {
	Cycle       int
	Component   string
	Note        string // e.g. "right after restarting inventory (rebalance)"
	At          time.Time
	Restarted   time.Time
	Recovered   time.Time // a probe order placed after the restart completed
	RecoveryErr string
}

// Recovery is kill → the pipeline completes orders again.
func (k Kill) Recovery() time.Duration { return k.Recovered.Sub(k.At) }

// Outcome is everything the run measured, for the report.
type Outcome struct {
	Started, Finished time.Time
	Cycles            int // cycles run
	Asked             int // cycles asked for
	Probes            int // probe orders placed to measure recovery
	Kills             []Kill
	Record            *load.Record
	Result            *invariant.Result
	Replay            PhaseResult
	Poison            PhaseResult
	Extras            PhaseResult
	WAL               WALResult
	Webhook           PhaseResult
	Fuzz              FuzzResult
	// Whole is invariant 7 checked after the poison and the fuzz phases.
	Whole      []PipelineCheck
	Timeline   []Point
	QuiesceErr string
}

// PhaseResult is the outcome of one phase: what it did and what it found wrong.
type PhaseResult struct {
	Ran      bool
	Summary  string
	Problems []string
}

// OK reports whether the phase found nothing wrong.
func (p PhaseResult) OK() bool { return len(p.Problems) == 0 }

// Runner runs one chaos run.
type Runner struct {
	cfg     Config
	rng     *rand.Rand
	checker *invariant.Checker
	kafka   sarama.Client
	mu      sync.Mutex
	probes  []load.Order
	// customers mints the customer tokens of the orders the run places.
	customers *stackenv.Customers
	prefix    string
	// targets is what the next cycles kill: a shuffled round of Components at a time.
	targets []string
	rounds  int
}

// NewRunner connects to Kafka and returns a runner.
func NewRunner(cfg Config) (*Runner, error) {
	kc, err := invariant.NewKafkaClient(cfg.Endpoints.Env)
	if err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	customers, err := stackenv.LoadCustomers()
	if err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 11)), kafka: kc, customers: customers}
	r.checker = &invariant.Checker{Endpoints: cfg.Endpoints, Kafka: kc, MaxSlotLag: 1 << 20, Log: cfg.Out}
	return r, nil
}

// Close releases the Kafka client.
func (r *Runner) Close() error { return r.kafka.Close() }

func (r *Runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Out, "chaos %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// Run runs the whole chaos scenario and returns what it measured. An error means the run could
// not be carried out (a component did not come back); violations are in the outcome.
func (r *Runner) Run(ctx context.Context) (*Outcome, error) {
	out := &Outcome{Started: time.Now(), Cycles: r.cfg.Cycles, Asked: r.cfg.Cycles}
	r.prefix = fmt.Sprintf("C%06X", r.rng.IntN(1<<24))
	gen := load.New(load.Config{
		OrderURL: r.cfg.Endpoints.OrderURL, InventoryURL: r.cfg.Endpoints.InventoryURL,
		AdminToken: r.cfg.Endpoints.AdminToken, Customers: r.customers, Rate: r.cfg.Rate, Concurrency: 64,
		Duration: 6 * time.Hour, Seed: r.cfg.Seed, Prefix: r.prefix,
		Progress: r.cfg.Out, ProgressEvery: 5 * time.Second,
	})
	if err := gen.Setup(ctx); err != nil {
		return nil, err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var (
		rec     *load.Record
		loadErr error
		loadWG  sync.WaitGroup
	)
	loadWG.Go(func() { rec, loadErr = gen.Run(loadCtx) })

	err := r.underLoad(ctx, out)
	stopLoad()
	loadWG.Wait()
	if err != nil {
		return out, err
	}
	if loadErr != nil {
		return out, loadErr
	}
	r.mu.Lock()
	rec.Orders = append(rec.Orders, r.probes...)
	out.Probes = len(r.probes)
	r.mu.Unlock()
	out.Record = rec
	r.logf("load stopped: %d sent, %d accepted, %d errors (component down), %d rejected",
		rec.Stats.Sent, rec.Stats.Accepted, rec.Stats.Errors, rec.Stats.Rejected)

	if err := r.checker.Quiesce(ctx, rec, 4*time.Minute); err != nil {
		out.QuiesceErr = err.Error()
		r.logf("quiescence: %v", err)
	}
	out.Replay = r.replay(ctx, rec)
	out.Poison = r.poison(ctx, rec)
	out.Whole = append(out.Whole, r.pipelineWhole(ctx, rec, "poison"))
	out.Fuzz = r.fuzz(ctx)
	out.Whole = append(out.Whole, r.pipelineWhole(ctx, rec, "fuzz"))
	r.mu.Lock()
	out.Probes = len(r.probes)
	r.mu.Unlock()
	if err := r.checker.Quiesce(ctx, rec, 2*time.Minute); err != nil {
		out.QuiesceErr = err.Error()
	} else if _, err := r.checker.SettledSnapshot(ctx, rec, 3*time.Second, 2*time.Minute); err != nil {
		out.QuiesceErr = err.Error()
	}
	res, err := r.checker.Check(ctx, rec)
	if err != nil {
		return out, fmt.Errorf("check invariants: %w", err)
	}
	out.Result = res
	out.Timeline, err = r.timeline(ctx, rec)
	if err != nil {
		return out, err
	}
	out.Finished = time.Now()
	return out, nil
}

// underLoad runs the kill cycles, the second-instance phase and the WAL phase while load runs.
func (r *Runner) underLoad(ctx context.Context, out *Outcome) error {
	time.Sleep(3 * time.Second)
	start := time.Now()
	out.Cycles = 0
	for i := 1; i <= r.cfg.Cycles; i++ {
		if r.cfg.Budget > 0 && time.Since(start) > r.cfg.Budget {
			r.logf("time budget %s spent after %d of %d cycles", r.cfg.Budget, i-1, r.cfg.Cycles)
			break
		}
		kills, err := r.cycle(ctx, i)
		out.Kills = append(out.Kills, kills...)
		out.Cycles = i
		if err != nil {
			return err
		}
	}
	if !r.cfg.Short {
		out.Extras = r.secondInstances(ctx)
	}
	var err error
	out.WAL, err = r.walOutage(ctx)
	if err != nil {
		return err
	}
	if r.cfg.WebhookOutage > 0 {
		out.Webhook = r.webhookOutage(ctx)
	}
	time.Sleep(3 * time.Second)
	return nil
}

// cycle kills one component at a random moment and brings it back; every third cycle it first
// restarts a consumer service so that the kill lands during a consumer-group rebalance.
func (r *Runner) cycle(ctx context.Context, n int) ([]Kill, error) {
	time.Sleep(time.Duration(500+r.rng.IntN(2500)) * time.Millisecond)
	target := r.nextTarget()
	var kills []Kill
	note := "random moment under load"
	if n%3 == 0 {
		other := Services[r.rng.IntN(len(Services))]
		if other != target {
			k, err := r.killAndRecover(ctx, n, other, "restart to start a rebalance")
			kills = append(kills, k)
			if err != nil {
				return kills, err
			}
			note = "right after restarting " + other + " (during the rebalance)"
		}
	}
	k, err := r.killAndRecover(ctx, n, target, note)
	return append(kills, k), err
}

// nextTarget returns the component the next cycle kills: rounds of every component in a random
// order, so that each is killed about as often as the others. The first round starts with
// PostgreSQL, so that even the three cycles of the short variant lose the database once (the
// fault that found the dead-lettering of good events on an outage).
func (r *Runner) nextTarget() string {
	if len(r.targets) == 0 {
		r.targets = slices.Clone(Components)
		r.rng.Shuffle(len(r.targets), func(i, j int) { r.targets[i], r.targets[j] = r.targets[j], r.targets[i] })
		if r.rounds == 0 {
			i := slices.Index(r.targets, "postgres")
			r.targets[0], r.targets[i] = r.targets[i], r.targets[0]
		}
		r.rounds++
	}
	t := r.targets[0]
	r.targets = r.targets[1:]
	return t
}

// killAndRecover SIGKILLs name, restarts it and waits until a probe order completes.
func (r *Runner) killAndRecover(ctx context.Context, cycle int, name, note string) (Kill, error) {
	k := Kill{Cycle: cycle, Component: name, Note: note, At: time.Now()}
	r.logf("cycle %d: SIGKILL %s (%s)", cycle, name, note)
	if err := r.cfg.Stack.Kill(name); err != nil {
		return k, err
	}
	if note == "restart to start a rebalance" {
		// Restart at once and do not wait for a probe: the next kill lands during the rebalance.
		if err := r.cfg.Stack.Start(ctx, name); err != nil {
			return k, err
		}
		k.Restarted = time.Now()
		k.Recovered = k.Restarted
		return k, nil
	}
	time.Sleep(time.Duration(r.rng.IntN(1500)) * time.Millisecond)
	if err := r.cfg.Stack.Start(ctx, name); err != nil {
		return k, err
	}
	k.Restarted = time.Now()
	if err := r.probe(ctx, 3*time.Minute); err != nil {
		k.RecoveryErr = err.Error()
		r.logf("cycle %d: %s: %v", cycle, name, err)
	}
	k.Recovered = time.Now()
	r.logf("cycle %d: %s back after %s, orders complete again after %s", cycle, name,
		k.Restarted.Sub(k.At).Round(time.Millisecond), k.Recovery().Round(time.Millisecond))
	return k, nil
}
