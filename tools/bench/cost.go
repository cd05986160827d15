package bench

import (
	"fmt"
	"image/color"
	"os"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"outboxsaga.dev/tools/procstat"
)

// LoadGenerator names the bench's own process (and the profilers it runs) in a CPUSample and a
// CPUWindow: reported, never counted in the stack's cost.
const LoadGenerator = "load generator"

// CPUMeter reads the CPU time of the stack's components, each the process of a pid file of
// PidDir with all its descendants (a PostgreSQL postmaster with its backends, walsenders,
// checkpointer and autovacuum workers; a JVM; a Go service), and of the load generator.
type CPUMeter struct {
	Proc   procstat.FS
	PidDir string
	// Self is the load generator's pid.
	Self int
}

// NewCPUMeter returns a meter of the stack whose pid files are in pidDir, with this process as
// the load generator.
func NewCPUMeter(pidDir string) *CPUMeter {
	return &CPUMeter{Proc: procstat.Proc, PidDir: pidDir, Self: os.Getpid()}
}

// CPUSample is the CPU time of every component at one instant.
type CPUSample struct {
	At time.Time
	// Trees maps each running component, and LoadGenerator, to its process tree.
	Trees   map[string]procstat.Tree
	Machine procstat.Machine
	// Kernel is the CPU ticks of the kernel's own threads (kthreadd, pid 2, and its children:
	// softirq, kworker, writeback), which work for the stack as much as for anyone.
	Kernel uint64
	// Switches maps each component to the context switches of its processes' live threads.
	Switches map[string]procstat.Switches
	// Postgres holds each child process of the Postgres component (Postgres), by pid and
	// start time: what it does and its CPU ticks.
	Postgres map[pgProc]pgChild
}

// Postgres is the component whose children CPUSample tells apart by what they do.
const Postgres = "postgres"

// pgProc identifies a process: a pid with its start time (a pid can be reused).
type pgProc struct {
	PID   int
	Start uint64
}

// pgChild is one PostgreSQL child process at a sample.
type pgChild struct {
	Role  string
	Ticks uint64
}

// Sample reads the pid files (anew: a component restarted meanwhile has a new pid) and the CPU
// time of every component.
func (m *CPUMeter) Sample() (CPUSample, error) {
	comps, err := Components(m.PidDir)
	if err != nil {
		return CPUSample{}, err
	}
	all, err := m.Proc.All()
	if err != nil {
		return CPUSample{}, err
	}
	machine, err := m.Proc.Machine()
	if err != nil {
		return CPUSample{}, err
	}
	s := CPUSample{At: time.Now(), Trees: map[string]procstat.Tree{}, Machine: machine,
		Switches: map[string]procstat.Switches{}, Postgres: map[pgProc]pgChild{}}
	for _, p := range all {
		if p.PID == 2 || p.PPID == 2 {
			s.Kernel += p.CPU()
		}
	}
	for _, c := range comps {
		t, err := procstat.TreeOf(c.PID, all)
		if err != nil {
			continue
		}
		s.Trees[c.Name] = t
		var sw procstat.Switches
		for _, p := range t.Members {
			if n, err := m.Proc.Switches(p.PID); err == nil {
				sw = sw.Add(n)
			}
			if c.Name == Postgres && p.PID != c.PID {
				cmd, err := m.Proc.Cmdline(p.PID)
				if err != nil {
					continue // exited meanwhile: its CPU is the postmaster's now
				}
				s.Postgres[pgProc{p.PID, p.StartTime}] = pgChild{Role: procstat.PostgresRole(cmd), Ticks: p.CPU()}
			}
		}
		s.Switches[c.Name] = sw
	}
	if t, err := procstat.TreeOf(m.Self, all); err == nil {
		s.Trees[LoadGenerator] = t
	}
	return s, nil
}

// CPUWindow is the CPU time each component used over one measured stretch of the run.
type CPUWindow struct {
	// Name labels the window: "idle", "25/s", "sustained 25/s", "ceiling 8 workers".
	Name string
	// Rate is the offered rate, orders/s (0: idle, the ceiling).
	Rate float64
	// Sagas is how many sagas reached a terminal state in the window.
	Sagas    int
	Duration time.Duration
	// CPU is each component's CPU time in the window, LoadGenerator's too.
	CPU map[string]time.Duration
	// Restarted names the components whose process was not the same at both ends (restarted,
	// started or gone): they have no figure in this window.
	Restarted []string
	// Machine is the busy CPU time of the whole machine in the window.
	Machine time.Duration
	// Kernel is the CPU time of the kernel's threads in the window.
	Kernel time.Duration
	// Profiled is true when the components were profiled during the window: its figures carry
	// the profilers' own cost, so the plot leaves it out.
	Profiled bool
	// Switches is each component's context switches in the window (its live threads').
	Switches map[string]procstat.Switches
	// PostgresBy is the Postgres component's CPU in the window by what its processes do
	// (procstat.PostgresRole: "order_svc@order_db", "walsender", "checkpointer", ...), with
	// PostgresRest for the postmaster and the processes that exited during the window (their
	// time reaches the postmaster's cutime, not a child that can be named).
	PostgresBy map[string]time.Duration
	// PG is what PostgreSQL's own counters moved by in the window (nil: not read).
	PG *PGWindow
}

// PostgresRest labels the part of Postgres's CPU no live child process accounts for.
const PostgresRest = "postmaster and exited processes"

// NewCPUWindow is the window between two samples.
func NewCPUWindow(name string, rate float64, sagas int, from, to CPUSample) CPUWindow {
	w := CPUWindow{Name: name, Rate: rate, Sagas: sagas, Duration: to.At.Sub(from.At), CPU: map[string]time.Duration{}}
	names := map[string]bool{}
	for n := range from.Trees {
		names[n] = true
	}
	for n := range to.Trees {
		names[n] = true
	}
	for n := range names {
		a, okA := from.Trees[n]
		b, okB := to.Trees[n]
		if !okA || !okB || a.Root.PID != b.Root.PID || a.Root.StartTime != b.Root.StartTime {
			w.Restarted = append(w.Restarted, n)
			continue
		}
		// Signed: a descendant that leaves the tree without being waited for (re-parented)
		// takes its time along; that shows as less, never hidden.
		w.CPU[n] = procstat.Ticks(b.Ticks) - procstat.Ticks(a.Ticks)
	}
	slices.Sort(w.Restarted)
	w.Switches = map[string]procstat.Switches{}
	for n, b := range to.Switches {
		a, ok := from.Switches[n]
		if !ok || slices.Contains(w.Restarted, n) {
			continue
		}
		// Threads that exit take their counts along: clamp at zero rather than wrap.
		w.Switches[n] = procstat.Switches{Voluntary: b.Voluntary - min(a.Voluntary, b.Voluntary),
			Nonvoluntary: b.Nonvoluntary - min(a.Nonvoluntary, b.Nonvoluntary)}
	}
	if total, ok := w.CPU[Postgres]; ok {
		w.PostgresBy = map[string]time.Duration{}
		var named time.Duration
		for k, b := range to.Postgres {
			a := from.Postgres[k] // zero when born in the window
			d := procstat.Ticks(b.Ticks) - procstat.Ticks(a.Ticks)
			w.PostgresBy[b.Role] += d
			named += d
		}
		w.PostgresBy[PostgresRest] = total - named
	}
	w.Machine = procstat.Ticks(to.Machine.Busy) - procstat.Ticks(from.Machine.Busy)
	w.Kernel = procstat.Ticks(to.Kernel) - procstat.Ticks(from.Kernel)
	return w
}

// Rest is the CPU the rest of the machine used during w, in cores: the machine's busy time
// minus the stack's and the load generator's (neighbours, kernel threads, softirqs).
func (w CPUWindow) Rest() float64 {
	if w.Duration <= 0 {
		return 0
	}
	rest := w.Machine
	for _, c := range w.CPU {
		rest -= c
	}
	return rest.Seconds() / w.Duration.Seconds()
}

// Neighbours is the CPU that processes outside the stack used during w, in cores: Rest without
// the kernel's threads. A step whose neighbours used more than NeighbourLimit is marked, and
// rerun once.
func (w CPUWindow) Neighbours() float64 {
	if w.Duration <= 0 {
		return 0
	}
	return w.Rest() - w.Kernel.Seconds()/w.Duration.Seconds()
}

// NeighbourLimit is the share of one core that processes outside the stack may use during a
// step before the step is marked as disturbed (and rerun once).
const NeighbourLimit = 0.10

// CostModel is the CPU per saga of every component: the idle burn measured in the same run and
// one window per load step, the sustained run, the profiled step and the ceiling's levels.
type CostModel struct {
	Idle *CPUWindow
	// Windows are the load windows, in the order they ran.
	Windows []CPUWindow
	// Ref is the index in Windows of the window behind the headline "CPU-ms per saga" (-1: none).
	Ref int
	// Tail is how long each load window runs on after its step's last terminal event.
	Tail time.Duration
}

// IdleShare is component c's idle burn, in cores (0.25 = 25 % of one core).
func (m *CostModel) IdleShare(c string) (float64, bool) {
	if m.Idle == nil || m.Idle.Duration <= 0 {
		return 0, false
	}
	cpu, ok := m.Idle.CPU[c]
	if !ok {
		return 0, false
	}
	return cpu.Seconds() / m.Idle.Duration.Seconds(), true
}

// PerSaga is component c's CPU-ms per saga in w: (its CPU in w − its idle share × w's duration)
// / the sagas of w. False when there is no figure: no sagas, c restarted, or no idle burn of c.
func (m *CostModel) PerSaga(w CPUWindow, c string) (float64, bool) {
	share, ok := m.IdleShare(c)
	cpu, inWindow := w.CPU[c]
	if !ok || !inWindow || w.Sagas <= 0 {
		return 0, false
	}
	return (cpu.Seconds() - share*w.Duration.Seconds()) * 1000 / float64(w.Sagas), true
}

// Stack is the whole stack's CPU-ms per saga in w: every component but the load generator.
// False unless every component has a figure.
func (m *CostModel) Stack(w CPUWindow) (float64, bool) {
	var sum float64
	for _, c := range m.Components() {
		v, ok := m.PerSaga(w, c)
		if !ok {
			return 0, false
		}
		sum += v
	}
	return sum, len(m.Components()) > 0
}

// Gross is the whole stack's CPU-ms per saga in w without the idle burn subtracted: an upper
// bound, for when the idle burn does not simply add up under load (a component that polls burns
// less of its idle share when it has work or when the CPU is contended).
func (m *CostModel) Gross(w CPUWindow) (float64, bool) {
	if w.Sagas <= 0 {
		return 0, false
	}
	var sum time.Duration
	for _, c := range m.Components() {
		cpu, ok := w.CPU[c]
		if !ok {
			return 0, false
		}
		sum += cpu
	}
	return sum.Seconds() * 1000 / float64(w.Sagas), len(m.Components()) > 0
}

// IdleStack is the whole stack's idle burn, in cores.
func (m *CostModel) IdleStack() (float64, bool) {
	var sum float64
	for _, c := range m.Components() {
		v, ok := m.IdleShare(c)
		if !ok {
			return 0, false
		}
		sum += v
	}
	return sum, len(m.Components()) > 0
}

// Components lists the stack's components (the load generator apart) that the idle window or
// any load window saw, sorted by name.
func (m *CostModel) Components() []string {
	seen := map[string]bool{}
	add := func(w *CPUWindow) {
		for c := range w.CPU {
			seen[c] = true
		}
		for _, c := range w.Restarted {
			seen[c] = true
		}
	}
	if m.Idle != nil {
		add(m.Idle)
	}
	for i := range m.Windows {
		add(&m.Windows[i])
	}
	delete(seen, LoadGenerator)
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// Headline is the CPU-ms per saga of the reference window and that window.
func (m *CostModel) Headline() (float64, CPUWindow, bool) {
	if m.Ref < 0 || m.Ref >= len(m.Windows) {
		return 0, CPUWindow{}, false
	}
	w := m.Windows[m.Ref]
	v, ok := m.Stack(w)
	return v, w, ok
}

// Markdown renders the cost model: the headline line, how it was measured, and the table of
// CPU-ms per saga per component per window with the idle burn.
func (m *CostModel) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if v, w, ok := m.Headline(); ok {
		p("CPU-ms per saga: %.1f\n\n", v)
		p("That is the whole stack's CPU time per saga in the %s window (%d sagas in %s), idle burn subtracted; ", w.Name, w.Sagas, w.Duration.Round(time.Second))
		if lg, ok := m.PerSaga(w, LoadGenerator); ok {
			p("the load generator (this bench) used %.1f ms per saga more, not counted.\n\n", lg)
		} else {
			p("the load generator (this bench) is not counted.\n\n")
		}
	} else if m.Ref >= 0 && m.Ref < len(m.Windows) {
		w := m.Windows[m.Ref]
		var missing []string
		for _, c := range m.Components() {
			if _, ok := m.PerSaga(w, c); !ok {
				missing = append(missing, c)
			}
		}
		p("CPU-ms per saga: n/a (the %s window has no figure for %s: restarted during it or during the idle baseline)\n\n",
			w.Name, strings.Join(missing, ", "))
	} else {
		p("CPU-ms per saga: n/a (no reference window: neither a sustained run nor a step that held)\n\n")
	}
	if m.Idle == nil {
		return b.String()
	}
	if idle, ok := m.IdleStack(); ok {
		p("Idle: the stack burns **%.1f %% of one core** with no load (measured for %s in this run, before the load steps).\n\n",
			idle*100, m.Idle.Duration.Round(time.Second))
	}
	p("CPU-ms per saga = (the component's CPU time in the window − its idle burn × the window) / the sagas that reached a terminal state in it. ")
	p("CPU time is utime + stime from /proc of each process recorded in the stack's pid files, with every descendant (Postgres: the postmaster and all its children, exited backends through cutime/cstime). ")
	p("A window runs from the step's first order to %s after its last terminal event, so the saga's trailing steps (StockCommitted, deliveries, notifications) fall inside. ", m.Tail)
	p("A component restarted during a window has no figure there.\n\n")
	p("| component | idle, %% of a core |")
	for _, w := range m.Windows {
		p(" %s |", w.Name)
	}
	p("\n|---|---:|%s\n", strings.Repeat("---:|", len(m.Windows)))
	cell := func(w CPUWindow, c string) string {
		if slices.Contains(w.Restarted, c) {
			return "restarted"
		}
		if v, ok := m.PerSaga(w, c); ok {
			return fmt.Sprintf("%.2f", v)
		}
		return "–"
	}
	idle := func(c string) string {
		if v, ok := m.IdleShare(c); ok {
			return fmt.Sprintf("%.1f", v*100)
		}
		return cell(*m.Idle, c)
	}
	// row writes one line of the table: its label, its idle cell and a cell per window.
	row := func(label, idleCell string, perWindow func(w CPUWindow) string) {
		p("| %s | %s |", label, idleCell)
		for _, w := range m.Windows {
			p(" %s |", perWindow(w))
		}
		p("\n")
	}
	// figure formats a figure, or – without one.
	figure := func(format string, f func(CPUWindow) (float64, bool)) func(CPUWindow) string {
		return func(w CPUWindow) string {
			if v, ok := f(w); ok {
				return fmt.Sprintf(format, v)
			}
			return "–"
		}
	}
	for _, c := range m.Components() {
		row(c, idle(c), func(w CPUWindow) string { return cell(w, c) })
	}
	idleStack := "–"
	if v, ok := m.IdleStack(); ok {
		idleStack = fmt.Sprintf("**%.1f**", v*100)
	}
	row("**stack**", idleStack, figure("**%.2f**", m.Stack))
	row("stack, idle not subtracted", "–", figure("%.2f", m.Gross))
	row("load generator (not counted)", idle(LoadGenerator), func(w CPUWindow) string { return cell(w, LoadGenerator) })
	row("sagas in the window", "–", func(w CPUWindow) string { return fmt.Sprint(w.Sagas) })
	row("window, s", fmt.Sprintf("%.0f", m.Idle.Duration.Seconds()), func(w CPUWindow) string { return fmt.Sprintf("%.0f", w.Duration.Seconds()) })
	row("rest of the machine, % of a core (not counted)", fmt.Sprintf("%.0f", m.Idle.Rest()*100),
		func(w CPUWindow) string { return fmt.Sprintf("%.0f", w.Rest()*100) })
	p("\nThe last row is what the other processes of the machine used meanwhile (neighbours, kernel threads): the larger it is, the noisier every figure above. ")
	p("A negative figure is a component whose idle burn does not go on under load: one that polls (Debezium's tasks in Connect) burns less of it when it has work or the CPU is contended, so subtracting all of it undercounts; the stack's figure without the subtraction bounds it from above.")
	for _, w := range m.Windows {
		if w.Profiled {
			p(" The %s window ran the profilers (PROFILES.md): its figures include their own cost (JFR's start alone costs a JVM seconds of CPU), so it is not plotted.", w.Name)
		}
	}
	p("\n")
	b.WriteString(m.switchesMarkdown())
	b.WriteString(m.postgresMarkdown())
	b.WriteString(m.pgMarkdown())
	return b.String()
}

// switchesMarkdown renders the context switches per saga of every component per window, with
// their rate at idle: counts, which the neighbours' load does not inflate the way it inflates CPU
// time.
func (m *CostModel) switchesMarkdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if m.Idle == nil || len(m.Idle.Switches) == 0 {
		return ""
	}
	p("\n### Context switches per saga\n\n")
	p("Voluntary (the thread blocked: a socket read, a lock, a sleep) / nonvoluntary (the scheduler took the CPU from it), summed over the live threads of every process of the component (/proc/<pid>/task/*/status), per saga that reached a terminal state in the window, idle not subtracted; the idle column is per second. ")
	p("A thread that exits takes its count along, so short-lived processes (Postgres backends of a test) are missing here.\n\n")
	p("| component | idle, per s |")
	for _, w := range m.Windows {
		p(" %s |", w.Name)
	}
	p("\n|---|---:|%s\n", strings.Repeat("---:|", len(m.Windows)))
	cell := func(sw procstat.Switches, ok bool, per float64) string {
		if !ok || per <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f / %.0f", float64(sw.Voluntary)/per, float64(sw.Nonvoluntary)/per)
	}
	names := append(m.Components(), LoadGenerator)
	var idleSum, winSum = procstat.Switches{}, make([]procstat.Switches, len(m.Windows))
	for _, c := range names {
		sw, ok := m.Idle.Switches[c]
		p("| %s | %s |", c, cell(sw, ok, m.Idle.Duration.Seconds()))
		if c != LoadGenerator {
			idleSum = idleSum.Add(sw)
		}
		for i, w := range m.Windows {
			sw, ok := w.Switches[c]
			p(" %s |", cell(sw, ok, float64(w.Sagas)))
			if c != LoadGenerator {
				winSum[i] = winSum[i].Add(sw)
			}
		}
		p("\n")
	}
	p("| **stack** | %s |", cell(idleSum, true, m.Idle.Duration.Seconds()))
	for i, w := range m.Windows {
		p(" %s |", cell(winSum[i], true, float64(w.Sagas)))
	}
	p("\n")
	return b.String()
}

// postgresMarkdown renders Postgres's CPU per saga split by what its processes do: each
// service's backends, the connectors' (debezium_*) backends and WAL senders, the console's, the
// superuser's (this bench, and any test using the stack: test_* databases), the auxiliary
// processes. Idle not subtracted; the idle column is in % of a core.
func (m *CostModel) postgresMarkdown() string {
	if m.Idle == nil || m.Idle.PostgresBy == nil {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	total := map[string]time.Duration{}
	for r, d := range m.Idle.PostgresBy {
		total[r] += d
	}
	for _, w := range m.Windows {
		for r, d := range w.PostgresBy {
			total[r] += d
		}
	}
	roles := make([]string, 0, len(total))
	for r, d := range total {
		if d > 0 || r == PostgresRest { // a process that used no tick anywhere is left out
			roles = append(roles, r)
		}
	}
	slices.SortFunc(roles, func(a, b string) int { return int(total[b] - total[a]) })
	p("\n### PostgreSQL's CPU by process\n\n")
	p("CPU-ms per saga of each kind of Postgres child process, idle not subtracted (the idle column: %% of a core). ")
	p("A client backend is named user@database from the command line it sets itself (postgres@test_* is every scratch database of a test run against this stack; postgres@postgres is the superuser: this bench's own queries, or anyone else's); %q is the postmaster and every process that exited during the window (a short-lived connection's backend).\n\n", PostgresRest)
	p("| process | idle, %% of a core |")
	for _, w := range m.Windows {
		p(" %s |", w.Name)
	}
	p("\n|---|---:|%s\n", strings.Repeat("---:|", len(m.Windows)))
	for _, r := range roles {
		idle := "–"
		if d, ok := m.Idle.PostgresBy[r]; ok && m.Idle.Duration > 0 {
			idle = fmt.Sprintf("%.2f", 100*d.Seconds()/m.Idle.Duration.Seconds())
		}
		p("| %s | %s |", r, idle)
		for _, w := range m.Windows {
			if d, ok := w.PostgresBy[r]; ok && w.Sagas > 0 {
				p(" %.2f |", d.Seconds()*1000/float64(w.Sagas))
			} else {
				p(" – |")
			}
		}
		p("\n")
	}
	return b.String()
}

// palette colours the components of the cost plot.
var palette = []color.RGBA{
	{R: 31, G: 119, B: 180, A: 255}, {R: 255, G: 127, B: 14, A: 255}, {R: 44, G: 160, B: 44, A: 255},
	{R: 214, G: 39, B: 40, A: 255}, {R: 148, G: 103, B: 189, A: 255}, {R: 140, G: 86, B: 75, A: 255},
	{R: 227, G: 119, B: 194, A: 255}, {R: 127, G: 127, B: 127, A: 255}, {R: 188, G: 189, B: 34, A: 255},
	{R: 23, G: 190, B: 207, A: 255}, {R: 0, G: 0, B: 128, A: 255}, {R: 128, G: 0, B: 0, A: 255},
}

// Plot writes a PNG of CPU-ms per saga per window but the profiled one, stacked by component (a
// negative figure, the noise of a window with little load, is drawn as 0), with the stack's total
// as a point.
func (m *CostModel) Plot(path string, date time.Time) error {
	p := plot.New()
	p.Title.Text = "CPU-ms per saga by component, idle subtracted (" + date.UTC().Format("2006-01-02") + ")"
	p.Y.Label.Text = "CPU-ms per completed saga"
	var labels []string
	var windows []CPUWindow
	for _, w := range m.Windows {
		if w.Sagas > 0 && !w.Profiled {
			labels = append(labels, w.Name)
			windows = append(windows, w)
		}
	}
	if len(windows) == 0 {
		return nil
	}
	width := vg.Points(min(300/float64(len(windows)), 40))
	var below *plotter.BarChart
	for i, c := range m.Components() {
		vals := make(plotter.Values, len(windows))
		for j, w := range windows {
			if v, ok := m.PerSaga(w, c); ok && v > 0 {
				vals[j] = v
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return fmt.Errorf("plot %s: %w", c, err)
		}
		bars.Color = palette[i%len(palette)]
		bars.LineStyle.Width = 0
		if below != nil {
			bars.StackOn(below)
		}
		below = bars
		p.Add(bars)
		p.Legend.Add(c, bars)
	}
	var totals plotter.XYs
	for j, w := range windows {
		if v, ok := m.Stack(w); ok {
			totals = append(totals, plotter.XY{X: float64(j), Y: v})
		}
	}
	if len(totals) > 0 {
		pts, err := plotter.NewScatter(totals)
		if err != nil {
			return fmt.Errorf("plot totals: %w", err)
		}
		pts.Radius = vg.Points(4)
		p.Add(pts)
		p.Legend.Add("stack total", pts)
	}
	p.NominalX(labels...)
	p.Legend.Top, p.Legend.Left = true, true
	p.Y.Min = 0
	if err := p.Save(vg.Length(max(8, 1.2*float64(len(windows))))*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("save plot %s: %w", path, err)
	}
	return nil
}
