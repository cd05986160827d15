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
	"strings"
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
	// Cluster is the cluster topology's run (TOPOLOGY=cluster): it kills kinds of members
	// (ClusterKinds) and skips the phases that assume one instance of each component (replay,
	// second instances, the WAL outage).
	Cluster bool
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

// Kill is one kill of a component (or, on the cluster, of several at once) and its recovery.
type Kill struct {
	Cycle int
	// Kind is what was killed: the component on the single node, one of ClusterKinds on the
	// cluster.
	Kind        string
	Component   string // the components killed, joined by +
	Note        string // e.g. "right after restarting inventory (rebalance)"
	At          time.Time
	Restarted   time.Time
	Recovered   time.Time // a probe order completed: placed after the restart, or before it (WhileDown)
	RecoveryErr string
	// WhileDown: the probe completed before the restart, while what was killed was down (the
	// cluster's kinds that it must survive, carriesOn).
	WhileDown bool
	// Sent and Failed count the order POSTs sent from the kill until orders completed again, and
	// those of them that failed (5xx or no answer after the load's retries).
	Sent, Failed int64
}

// Recovery is kill → the pipeline completes orders again.
func (k Kill) Recovery() time.Duration { return k.Recovered.Sub(k.At) }

// Outcome is everything the run measured, for the report.
type Outcome struct {
	Started, Finished time.Time
	Cluster           bool // the cluster topology's run
	Cycles            int  // cycles run
	Asked             int  // cycles asked for
	Probes            int  // probe orders placed to measure recovery
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
	// targets is what the next cycles kill: a shuffled round of Components (ClusterKinds) at a
	// time.
	targets []string
	rounds  int
	// gen is the background load (its counts date each kill's failed POSTs).
	gen *load.Generator
	// members are the cluster's nodes and workers (nil on the single node).
	members *clusterMembers
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
	if cfg.Cluster {
		if r.members, err = loadClusterMembers(); err != nil {
			kc.Close()
			return nil, err
		}
	}
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
	out := &Outcome{Started: time.Now(), Cycles: r.cfg.Cycles, Asked: r.cfg.Cycles, Cluster: r.cfg.Cluster}
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
	r.gen = gen
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
	if !r.cfg.Cluster {
		out.Replay = r.replay(ctx, rec)
	}
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
	if !r.cfg.Short && !r.cfg.Cluster {
		out.Extras = r.secondInstances(ctx)
	}
	if !r.cfg.Cluster {
		var err error
		if out.WAL, err = r.walOutage(ctx); err != nil {
			return err
		}
	}
	if r.cfg.WebhookOutage > 0 {
		out.Webhook = r.webhookOutage(ctx)
	}
	time.Sleep(3 * time.Second)
	return nil
}

// cycle kills one component (on the cluster: one kind of member) at a random moment and brings
// it back; every third cycle it first restarts a consumer service (an instance of one) so that
// the kill lands during a consumer-group rebalance.
func (r *Runner) cycle(ctx context.Context, n int) ([]Kill, error) {
	time.Sleep(time.Duration(500+r.rng.IntN(2500)) * time.Millisecond)
	kind := r.nextTarget()
	names, note := []string{kind}, "random moment under load"
	if r.members != nil {
		var err error
		if names, note, err = r.victims(ctx, kind); err != nil {
			return nil, fmt.Errorf("cycle %d: find the %s to kill: %w", n, kind, err)
		}
	}
	var kills []Kill
	if n%3 == 0 {
		other := r.rebalanceVictim()
		if !slices.Contains(names, other) {
			k, err := r.killAndRecover(ctx, n, r.kindOf(other), []string{other}, restartNote)
			kills = append(kills, k)
			if err != nil {
				return kills, err
			}
			if r.members != nil {
				note += ", right after restarting " + other + " (during the rebalance)"
			} else {
				note = "right after restarting " + other + " (during the rebalance)"
			}
		}
	}
	k, err := r.killAndRecover(ctx, n, kind, names, note)
	return append(kills, k), err
}

// restartNote marks the restart that starts a rebalance for the next kill.
const restartNote = "restart to start a rebalance"

// rebalanceVictim is the consumer service (on the cluster: an instance of one) that a cycle
// restarts to start a rebalance.
func (r *Runner) rebalanceVictim() string {
	if r.members != nil {
		return r.randomInstance()
	}
	return Services[r.rng.IntN(len(Services))]
}

// kindOf is the kind of the rebalance's restart: an instance on the cluster, the component
// itself on the single node.
func (r *Runner) kindOf(name string) string {
	if r.members != nil {
		return KillInstance
	}
	return name
}

// nextTarget returns the component the next cycle kills: rounds of every component in a random
// order, so that each is killed about as often as the others. The first round starts with
// PostgreSQL, so that even the three cycles of the short variant lose the database once (the
// fault that found the dead-lettering of good events on an outage).
func (r *Runner) nextTarget() string {
	if len(r.targets) == 0 {
		r.targets = r.targetsOfRound()
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

// killAndRecover SIGKILLs names (at once), restarts them and waits until a probe order completes.
func (r *Runner) killAndRecover(ctx context.Context, cycle int, kind string, names []string, note string) (k Kill, err error) {
	k = Kill{Cycle: cycle, Kind: kind, Component: strings.Join(names, "+"), Note: note, At: time.Now()}
	before := r.gen.Stats()
	defer func() { // the POSTs of the kill's window, whichever way it ends
		after := r.gen.Stats()
		k.Sent, k.Failed = after.Sent-before.Sent, after.Errors-before.Errors
	}()
	r.logf("cycle %d: SIGKILL %s (%s)", cycle, k.Component, note)
	for _, name := range names {
		if err := r.cfg.Stack.Kill(name); err != nil {
			return k, err
		}
	}
	if note == restartNote {
		// Restart at once and do not wait for a probe: the next kill lands during the rebalance.
		if err := r.cfg.Stack.Start(ctx, k.Component); err != nil {
			return k, err
		}
		k.Restarted = time.Now()
		k.Recovered = k.Restarted
		return k, nil
	}
	if r.carriesOn(kind) {
		// The cluster must go on without what was killed: the probe runs before the restart.
		if err := r.probe(ctx, downProbe); err == nil {
			k.Recovered, k.WhileDown = time.Now(), true
		} else {
			r.logf("cycle %d: no order completed within %s with %s down: %v", cycle, downProbe, k.Component, err)
		}
	} else {
		time.Sleep(time.Duration(r.rng.IntN(1500)) * time.Millisecond)
	}
	if err := r.cfg.Stack.Start(ctx, k.Component); err != nil {
		return k, err
	}
	k.Restarted = time.Now()
	if !k.WhileDown {
		if err := r.probe(ctx, 3*time.Minute); err != nil {
			k.RecoveryErr = err.Error()
			r.logf("cycle %d: %s: %v", cycle, k.Component, err)
		}
		k.Recovered = time.Now()
	}
	when := ""
	if k.WhileDown {
		when = " (while it was down)"
	}
	r.logf("cycle %d: %s back after %s, orders complete again after %s%s", cycle, k.Component,
		k.Restarted.Sub(k.At).Round(time.Millisecond), k.Recovery().Round(time.Millisecond), when)
	return k, nil
}

// downProbe is how long a cluster kill's probe waits, before the restart, for an order to
// complete without what was killed.
const downProbe = 90 * time.Second

// carriesOn reports whether the stack must complete orders while a kill of kind is down: on the
// cluster, every kind but the single PostgreSQL and the webhook sink (one each).
func (r *Runner) carriesOn(kind string) bool {
	return r.members != nil && slices.Contains([]string{KillBroker, KillController, KillWorker, KillInstance, KillBrokerAndWorker}, kind)
}
