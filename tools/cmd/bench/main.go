// Command bench measures the saga pipeline of a running native stack and writes the results to
// docs/bench/: the bare-database ceiling swept over concurrency, the idle burn, open-loop steps at
// fixed rates, a sustained run with consumer and slot lag, the CPU per saga of every component,
// the per-hop breakdown and the RSS of every process; with -profile the components' profiles
// under load (PROFILES.md); with -preload N the cost of a rate once the databases hold N sagas'
// rows (PRELOAD.md); with -console N the render times of the operator console's pages once the
// databases hold N sagas' rows (CONSOLE.md). `make bench` runs it through scripts/bench.sh, which exports the stack's
// addresses (scripts/lib.sh). docs/bench/README.md says what each figure is.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"outboxsaga.dev/tools/bench"
	"outboxsaga.dev/tools/invariant"
	"outboxsaga.dev/tools/stackenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config is the command line, with defaults from the environment.
type config struct {
	orderURL, inventoryURL, connectURL, adminURL, adminToken string
	// env is the stack; bench reads Kafka as the viewer.
	env                                   stackenv.Env
	stackDir, outDir                      string
	rates                                 []float64
	step, sustain, ceilingFor, drain, p99 time.Duration
	sustainRate                           float64
	skus, maxInFlight                     int

	// ceilingWorkers are the concurrency levels of the ceiling sweep.
	ceilingWorkers []int
	// The cost model: the idle baseline and how long a window runs on after its step.
	idle, costTail time.Duration
	// Profiles under load.
	profile     bool
	profileFor  time.Duration
	profileRate float64
	// The preload comparison (-preload N).
	preload, preloadBatch   int
	preloadRate             float64
	preloadFor, preloadSpan time.Duration
	preloadKeep             bool
	// The console's pages (-console N).
	console, consoleTimes int
	consoleURL            string
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

func parseConfig(args []string) (config, error) {
	var (
		c     config
		rates string
		fs    = flag.NewFlagSet("bench", flag.ContinueOnError)
	)
	root := stackenv.Or("ROOT", ".")
	c.env = stackenv.Load().As(stackenv.Viewer)
	fs.StringVar(&c.orderURL, "order-url", stackenv.DefaultURL("order"), "order service")
	fs.StringVar(&c.inventoryURL, "inventory-url", stackenv.DefaultURL("inventory"), "inventory service")
	fs.StringVar(&c.connectURL, "connect-url", stackenv.DefaultConnectURL(), "Kafka Connect REST")
	fs.StringVar(&c.adminURL, "pg-admin-url", c.env.PGAdminURL, "Postgres superuser URL")
	fs.StringVar(&c.stackDir, "stack-dir", stackenv.Or("STACK_DIR", filepath.Join(root, ".stack")), "the stack's directory (pids/)")
	fs.StringVar(&c.outDir, "out", stackenv.Or("BENCH_OUT", filepath.Join(root, "docs", "bench")), "where the report goes")
	fs.StringVar(&rates, "rates", stackenv.Or("BENCH_RATES", "25,50,100,200,300,400"), "open-loop step rates, orders/s")
	fs.DurationVar(&c.step, "step", envDuration("BENCH_STEP_DURATION", 20*time.Second), "duration of each step")
	fs.DurationVar(&c.sustain, "duration", envDuration("BENCH_DURATION", 60*time.Second), "duration of the sustained run (the issue's target: 10m; 0: skip it)")
	fs.DurationVar(&c.ceilingFor, "ceiling-duration", envDuration("BENCH_CEILING_DURATION", 10*time.Second), "duration of each level of the ceiling sweep (0: skip it)")
	fs.DurationVar(&c.drain, "drain", envDuration("BENCH_DRAIN", 30*time.Second), "wait for the last orders' terminal events")
	fs.DurationVar(&c.p99, "p99", envDuration("BENCH_P99", 250*time.Millisecond), "p99 limit of a sustained rate")
	sustainRate, _ := strconv.ParseFloat(stackenv.Or("BENCH_SUSTAIN_RATE", "0"), 64)
	fs.Float64Var(&c.sustainRate, "sustain-rate", sustainRate, "rate of the sustained run; 0 = the highest step that held the p99 limit")
	workers := fs.String("ceiling-workers", stackenv.Or("BENCH_CEILING_WORKERS", "1,2,4,8,16,32"), "concurrency levels of the ceiling sweep")
	fs.IntVar(&c.skus, "skus", 32, "distinct SKUs the orders spread over")
	fs.IntVar(&c.maxInFlight, "max-in-flight", 4096, "open POSTs at most; sends beyond are skipped and counted")
	fs.DurationVar(&c.idle, "idle", envDuration("BENCH_IDLE", 30*time.Second), "idle baseline of the cost model, measured before the steps (0: no cost model)")
	fs.DurationVar(&c.costTail, "cost-tail", envDuration("BENCH_COST_TAIL", 6*time.Second), "how long a step's CPU window runs on after its last terminal event")
	fs.BoolVar(&c.profile, "profile", stackenv.Or("BENCH_PROFILE", "") == "1", "profile every component under load (pprof, JFR) into PROFILES.md")
	fs.DurationVar(&c.profileFor, "profile-duration", envDuration("BENCH_PROFILE_DURATION", 30*time.Second), "how long the profiles run")
	profileRate, _ := strconv.ParseFloat(stackenv.Or("BENCH_PROFILE_RATE", "0"), 64)
	fs.Float64Var(&c.profileRate, "profile-rate", profileRate, "rate of the profiled step; 0 = the sustained run's")
	preload, _ := strconv.Atoi(stackenv.Or("BENCH_PRELOAD", "0"))
	fs.IntVar(&c.preload, "preload", preload, "instead of the usual run: compare -preload-rate on the databases as they are and with this many synthetic sagas' rows (PRELOAD.md)")
	fs.IntVar(&c.preloadBatch, "preload-batch", 20000, "synthetic sagas per transaction of the preload")
	fs.Float64Var(&c.preloadRate, "preload-rate", 50, "rate of the preload comparison, orders/s")
	fs.DurationVar(&c.preloadFor, "preload-duration", 60*time.Second, "duration of each run of the preload comparison")
	fs.DurationVar(&c.preloadSpan, "preload-span", 24*time.Hour, "the synthetic sagas spread over this long before the run")
	fs.BoolVar(&c.preloadKeep, "preload-keep", false, "leave the synthetic rows in the databases")
	consoleSagas, _ := strconv.Atoi(stackenv.Or("BENCH_CONSOLE", "0"))
	fs.IntVar(&c.console, "console", consoleSagas, "instead of the usual run: time the console's pages once the databases hold this many synthetic sagas' rows (CONSOLE.md)")
	fs.IntVar(&c.consoleTimes, "console-times", 20, "GETs of each page (after one warm-up)")
	fs.StringVar(&c.consoleURL, "console-url", defaultConsoleURL(), "the console")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, w := range strings.Split(*workers, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || v <= 0 {
			return c, fmt.Errorf("ceiling workers %q: want positive numbers", w)
		}
		c.ceilingWorkers = append(c.ceilingWorkers, v)
	}
	if c.preload > 0 && c.idle <= 0 {
		c.idle = 30 * time.Second
	}
	c.adminToken = c.env.AdminToken
	for _, r := range strings.Split(rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || v <= 0 {
			return c, fmt.Errorf("rate %q: want a positive number", r)
		}
		c.rates = append(c.rates, v)
	}
	return c, nil
}

// benchRun is one make bench: its configuration, its clients and the report it fills.
type benchRun struct {
	cfg     config
	skus    []string
	admin   *sql.DB
	tracker *bench.Tracker
	lag     *bench.LagSampler
	load    *bench.Load
	rep     *bench.Report
	meter   *bench.CPUMeter
	// pg reads PostgreSQL's counters at each CPU window's ends (nil: could not).
	pg *bench.PGSampler
	// preloaded is the result of the preload comparison (-preload).
	preloaded *bench.PreloadResult
	// consoled is the result of the console's pages (-console).
	consoled *consoleResult
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	b, err := open(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.close()
	phases := []func(context.Context) error{b.warmUp, b.ceiling, b.idle, b.steps, b.sustained, b.profile}
	switch {
	case cfg.preload > 0:
		phases = []func(context.Context) error{b.warmUp, b.preloadCompare}
	case cfg.console > 0:
		phases = []func(context.Context) error{b.consolePages}
	}
	for _, phase := range phases {
		if err := phase(ctx); err != nil {
			return err
		}
	}
	return b.write()
}

// open connects to the stack, stocks the SKUs and starts the report with the machine's facts,
// the settings and the RSS at idle.
func open(ctx context.Context, cfg config) (*benchRun, error) {
	b := &benchRun{cfg: cfg, rep: &bench.Report{Date: time.Now(), P99Limit: cfg.p99, StepHops: map[float64][]bench.Hop{}},
		meter: bench.NewCPUMeter(filepath.Join(cfg.stackDir, "pids"))}
	for i := range cfg.skus {
		b.skus = append(b.skus, fmt.Sprintf("BENCH-%03d", i))
	}
	var err error
	if b.admin, err = sql.Open("postgres", cfg.adminURL); err != nil {
		return nil, fmt.Errorf("open admin database: %w", err)
	}
	if err := b.admin.PingContext(ctx); err != nil {
		b.close()
		return nil, fmt.Errorf("postgres at %s: %w", bench.RedactURL(cfg.adminURL), err)
	}
	if b.tracker, err = bench.NewTracker(cfg.env, invariant.SagaTopics); err != nil {
		b.close()
		return nil, err
	}
	probe, err := bench.NewLagSampler(cfg.env, b.admin, nil, invariant.SagaTopics)
	if err != nil {
		b.close()
		return nil, err
	}
	groups, err := probe.ServiceGroups()
	probe.Close()
	if err != nil {
		b.close()
		return nil, err
	}
	if b.lag, err = bench.NewLagSampler(cfg.env, b.admin, groups, invariant.SagaTopics); err != nil {
		b.close()
		return nil, err
	}
	if b.pg, err = bench.NewPGSampler(ctx, b.admin, cfg.adminURL); err != nil {
		say("no PostgreSQL counters in this run: %v", err)
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("no PostgreSQL counters in this run: %v", err))
	} else if !b.pg.Statements() {
		b.rep.Notes = append(b.rep.Notes, "no statement counters: pg_stat_statements is not in the cluster's shared_preload_libraries (a cluster made before it was; make clean && make up)")
	}
	b.rep.Machine = machineFacts(ctx, b.admin, cfg.stackDir)
	b.speed(ctx, "start")
	b.rep.Settings, b.rep.HopTimes.LogAppendTime = settings(ctx, b.admin, cfg)
	if b.rep.IdleRSS, err = bench.ReadRSS(b.pids()); err != nil {
		b.close()
		return nil, err
	}
	client := bench.NewHTTPClient()
	if err := bench.SetStock(ctx, client, cfg.orderURL, cfg.inventoryURL, cfg.adminToken, b.skus); err != nil {
		b.close()
		return nil, err
	}
	customers, err := stackenv.LoadCustomers() // CUSTOMER_TOKEN_PRIVATE_KEY, else the stack's key
	if err != nil {
		b.close()
		return nil, err
	}
	b.load = &bench.Load{OrderURL: cfg.orderURL, Tracker: b.tracker, SKUs: b.skus, MaxInFlight: cfg.maxInFlight,
		Drain: cfg.drain, Client: client, Customers: customers}
	return b, nil
}

func (b *benchRun) close() {
	if b.pg != nil {
		b.pg.Close()
	}
	if b.lag != nil {
		b.lag.Close()
	}
	if b.tracker != nil {
		b.tracker.Close()
	}
	if b.admin != nil {
		b.admin.Close()
	}
}

func (b *benchRun) pids() string { return filepath.Join(b.cfg.stackDir, "pids") }

func (b *benchRun) warmUp(ctx context.Context) error {
	say("warm-up: 5 s at 20 orders/s (not reported)")
	_, err := b.load.Step(ctx, 20, 5*time.Second)
	return err
}

// ceiling measures the saga's transactions straight from Go (no Kafka) at every concurrency
// level of the sweep, with their CPU when the cost model runs.
func (b *benchRun) ceiling(ctx context.Context) error {
	if b.cfg.ceilingFor <= 0 {
		return nil
	}
	if _, err := b.drain(ctx); err != nil {
		return err
	}
	say("ceiling: the saga's transactions from Go, %v workers, %s each", b.cfg.ceilingWorkers, b.cfg.ceilingFor)
	var meter *bench.CPUMeter
	if b.cfg.idle > 0 {
		meter = b.meter
	}
	var err error
	if b.rep.Ceiling, err = bench.Ceiling(ctx, b.cfg.adminURL, b.cfg.ceilingWorkers, b.cfg.ceilingFor, b.skus, meter); err != nil {
		return err
	}
	for _, l := range b.rep.Ceiling.Levels {
		if l.Err != "" {
			say("  %d workers: %s", l.Workers, l.Err)
			continue
		}
		say("  %d workers: %.0f saga-equivalents/s, %.0f transactions/s", l.Workers, l.PerSecond, l.TxPerSecond)
	}
	return nil
}

// steps runs the open-loop rate steps until the pipeline falls behind.
func (b *benchRun) steps(ctx context.Context) error {
	for _, rate := range b.cfg.rates {
		say("step: %.0f orders/s for %s", rate, b.cfg.step)
		st, _, err := b.step(ctx, stepName(rate), rate, b.cfg.step, true)
		if err != nil {
			return err
		}
		b.rep.Steps = append(b.rep.Steps, st)
		say("  %.1f sagas/s, p50 %s p99 %s max %s, lost %d, skipped %d", st.Throughput,
			st.Latency.P50.Round(time.Millisecond), st.Latency.P99.Round(time.Millisecond),
			st.Latency.Max.Round(time.Millisecond), st.Lost, st.Skipped)
		hops, times, err := bench.Hops(ctx, b.cfg.adminURL, b.tracker, st.Start)
		if err != nil {
			return err
		}
		b.rep.StepHops[rate], b.rep.HopTimes.CommitTimestamps = hops, times.CommitTimestamps
		// Stop when the pipeline no longer keeps up (not on latency alone: on a shared machine a
		// neighbour's burst can blow one step's p99 while the next still completes).
		if st.Lost > 0 || st.Throughput < 0.8*st.Rate {
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("steps stopped after %.0f orders/s: the pipeline fell behind", rate))
			return nil
		}
	}
	return nil
}

// sustainRate is the rate of the sustained run: as configured, or the highest step that held.
func (b *benchRun) sustainRate() float64 {
	rate := b.cfg.sustainRate
	if rate == 0 {
		for _, st := range b.rep.Steps {
			if held(st, b.cfg.p99) && st.Rate > rate {
				rate = st.Rate
			}
		}
	}
	if rate == 0 && len(b.cfg.rates) > 0 {
		rate = b.cfg.rates[0]
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf(
			"no step held the p99 limit with every order terminal; the sustained run uses the lowest step rate, %.0f orders/s", rate))
	}
	return rate
}

// sustained runs one rate for the sustained duration, sampling lag and RSS.
func (b *benchRun) sustained(ctx context.Context) error {
	rate := b.sustainRate()
	if rate <= 0 || b.cfg.sustain <= 0 {
		var err error
		b.rep.LoadRSS, err = bench.ReadRSS(b.pids())
		return err
	}
	say("sustained: %.0f orders/s for %s, sampling consumer and slot lag", rate, b.cfg.sustain)
	window := -1
	step := func(ctx context.Context, rate float64, d time.Duration) (st bench.StepResult, err error) {
		st, window, err = b.step(ctx, "sustained "+stepName(rate), rate, d, false)
		return st, err
	}
	sus, loadRSS, err := sustained(ctx, step, b.lag, rate, b.cfg)
	if err != nil {
		return err
	}
	if b.rep.Cost != nil {
		b.rep.Cost.Ref = window
	}
	b.rep.Sustained, b.rep.LoadRSS = sus, loadRSS
	b.rep.SusHops, _, err = bench.Hops(ctx, b.cfg.adminURL, b.tracker, sus.Step.Start)
	return err
}

// write prints the table and writes RESULTS.md and the plots, or PRELOAD.md after -preload.
func (b *benchRun) write() error {
	if err := os.MkdirAll(b.cfg.outDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", b.cfg.outDir, err)
	}
	if b.preloaded != nil {
		return writeFile(filepath.Join(b.cfg.outDir, "PRELOAD.md"), b.rep.PreloadMarkdown(b.preloaded))
	}
	if b.consoled != nil {
		b.speed(context.Background(), "end")
		return writeFile(filepath.Join(b.cfg.outDir, "CONSOLE.md"), b.consoleMarkdown(b.consoled))
	}
	b.speed(context.Background(), "end")
	b.chooseRef()
	fmt.Println()
	fmt.Println(b.rep.Table())
	if b.rep.Cost != nil {
		if v, w, ok := b.rep.Cost.Headline(); ok {
			fmt.Printf("CPU-ms per saga: %.1f (%s)\n", v, w.Name)
		}
	}
	if err := writeFile(filepath.Join(b.cfg.outDir, "RESULTS.md"), b.rep.Markdown()); err != nil {
		return err
	}
	png := filepath.Join(b.cfg.outDir, "latency-vs-rate.png")
	if err := b.rep.Plot(png); err != nil {
		return err
	}
	say("wrote %s", png)
	if b.rep.Cost != nil {
		cpu := filepath.Join(b.cfg.outDir, "cpu-per-saga.png")
		if err := b.rep.Cost.Plot(cpu, b.rep.Date); err != nil {
			return err
		}
		say("wrote %s", cpu)
	}
	return nil
}

// speed measures how fast the machine is now (bench.MeasureSpeed), pg_test_fsync writing beside
// the PostgreSQL cluster (same file system as its WAL), and adds it to the report.
func (b *benchRun) speed(ctx context.Context, when string) {
	dir := os.TempDir()
	var data string
	if err := b.admin.QueryRowContext(ctx, `SHOW data_directory`).Scan(&data); err == nil {
		if d := filepath.Dir(filepath.Dir(data)); writable(d) {
			dir = d
		}
	}
	s := bench.MeasureSpeed(ctx, when, dir, 1)
	say("machine speed (%s): %s", when, s)
	b.rep.Speed = append(b.rep.Speed, s)
}

// writable reports whether a file can be made in dir.
func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".bench-*")
	if err != nil {
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// writeFile writes content to path and says so.
func writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	say("wrote %s", path)
	return nil
}

// held reports whether a step kept up: every order terminal, p99 within the limit and the
// throughput within 5 % of the offered rate.
func held(st bench.StepResult, p99 time.Duration) bool {
	return st.Lost == 0 && st.Skipped == 0 && st.Latency.N > 0 && st.Latency.P99 <= p99 &&
		st.Throughput >= 0.95*st.Rate
}

// sustained runs rate for cfg.sustain through step while sampling lag every 2 s and the RSS of
// every process in the middle of the run.
func sustained(ctx context.Context, step func(context.Context, float64, time.Duration) (bench.StepResult, error),
	lag *bench.LagSampler, rate float64, cfg config) (*bench.Sustained, []bench.RSS, error) {
	sampleCtx, stopSampling := context.WithCancel(ctx)
	lagDone := make(chan []bench.LagSample, 1)
	go func() { lagDone <- lag.Run(sampleCtx, 2*time.Second) }()
	rssDone := make(chan []bench.RSS, 1)
	go func() {
		select {
		case <-time.After(cfg.sustain * 3 / 4):
		case <-sampleCtx.Done():
		}
		r, _ := bench.ReadRSS(filepath.Join(cfg.stackDir, "pids"))
		rssDone <- r
	}()
	st, err := step(ctx, rate, cfg.sustain)
	stopSampling()
	samples := <-lagDone
	rss := <-rssDone
	if err != nil {
		return nil, nil, err
	}
	// Only the samples taken while orders were sent judge flatness.
	var cons, slot []int64
	for _, s := range samples {
		if s.At.Before(st.Start.Add(cfg.sustain)) {
			cons = append(cons, s.Consumer)
			slot = append(slot, s.Slot)
		}
	}
	sus := &bench.Sustained{Step: st, Lag: samples}
	sus.ConsumerFirst, sus.ConsumerLast, sus.ConsumerFlat = bench.Flatness(cons, int64(rate*3))
	sus.SlotFirst, sus.SlotLast, sus.SlotFlat = bench.Flatness(slot, 16<<20)
	sus.OK = held(st, cfg.p99) && sus.ConsumerFlat && sus.SlotFlat
	return sus, rss, nil
}

// drainLimit is how long drain waits for the pipeline to finish earlier work before the next
// phase starts anyway (and the wait is noted).
const drainLimit = 5 * time.Minute

// drain waits until the pipeline has finished the work of what ran before: every service
// consumer group's lag zero in two samples a second apart. It returns how long that took; past
// drainLimit it notes that the next phase starts with work pending.
func (b *benchRun) drain(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	zero := 0
	var last bench.LagSample
	for time.Since(start) < drainLimit {
		s, err := b.lag.Sample(ctx)
		if err == nil {
			last = s
			if s.Consumer == 0 {
				zero++
			} else {
				zero = 0
			}
		}
		if zero == 2 {
			return time.Since(start), nil
		}
		if err := sleep(ctx, time.Second); err != nil {
			return time.Since(start), err
		}
	}
	b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("a phase started after %s with %d records still unconsumed", drainLimit, last.Consumer))
	return time.Since(start), nil
}

func say(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}
