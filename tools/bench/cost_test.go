package bench

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/tools/procstat"
)

// fakeStack is a fake /proc and pid directory: procs maps pid → (ppid, start, ticks).
type fakeStack struct {
	t      *testing.T
	proc   string
	pidDir string
}

func newFakeStack(t *testing.T, pids map[string]int) *fakeStack {
	t.Helper()
	f := &fakeStack{t: t, proc: t.TempDir(), pidDir: t.TempDir()}
	for name, pid := range pids {
		if err := os.WriteFile(filepath.Join(f.pidDir, name+".pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// set writes the stat of pid: its parent, start time and utime/stime/cutime/cstime.
func (f *fakeStack) set(pid, ppid int, start uint64, ticks [4]uint64) {
	f.t.Helper()
	dir := filepath.Join(f.proc, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	line := fmt.Sprintf("%d (p%d) S %d 1 1 0 -1 0 0 0 0 0 %d %d %d %d 20 0 1 0 %d 0 0\n",
		pid, pid, ppid, ticks[0], ticks[1], ticks[2], ticks[3], start)
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeStack) gone(pid int) {
	if err := os.RemoveAll(filepath.Join(f.proc, strconv.Itoa(pid))); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeStack) machine(busy, idle uint64) {
	f.t.Helper()
	line := fmt.Sprintf("cpu  %d 0 0 %d 0 0 0 0 0 0\n", busy, idle)
	if err := os.WriteFile(filepath.Join(f.proc, "stat"), []byte(line), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeStack) sample(m *CPUMeter, at time.Time) CPUSample {
	f.t.Helper()
	s, err := m.Sample()
	if err != nil {
		f.t.Fatal(err)
	}
	s.At = at
	return s
}

func TestCPUWindowFromTheProcessTrees(t *testing.T) {
	f := newFakeStack(t, map[string]int{"postgres": 100, "order": 200, "kafka": 300})
	meter := &CPUMeter{Proc: procstat.FS{Root: f.proc}, PidDir: f.pidDir, Self: 900}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	f.set(100, 1, 10, [4]uint64{100, 50, 0, 0}) // postmaster
	f.set(101, 100, 11, [4]uint64{20, 10, 0, 0})
	f.set(200, 1, 20, [4]uint64{300, 100, 0, 0})
	f.set(300, 1, 30, [4]uint64{1000, 0, 0, 0})
	f.set(900, 1, 90, [4]uint64{5, 5, 0, 0})
	f.machine(5000, 10000)
	from := f.sample(meter, t0)

	// Ten seconds later: a backend (102) came, worked and went: its 40 ticks moved into the
	// postmaster's cstime/cutime; the checkpointer worked 30 more; order 100 more; kafka was
	// restarted (another start time); the bench ran a profiler that exited (cutime).
	f.set(100, 1, 10, [4]uint64{110, 50, 30, 10})
	f.set(101, 100, 11, [4]uint64{40, 20, 0, 0})
	f.set(200, 1, 20, [4]uint64{380, 120, 0, 0})
	f.gone(300)
	f.set(301, 1, 999, [4]uint64{10, 0, 0, 0})
	if err := os.WriteFile(filepath.Join(f.pidDir, "kafka.pid"), []byte("301\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.set(900, 1, 90, [4]uint64{15, 5, 7, 3})
	f.machine(5600, 11400)
	to := f.sample(meter, t0.Add(10*time.Second))

	w := NewCPUWindow("25/s", 25, 250, from, to)
	want := map[string]time.Duration{
		"postgres":    (10 + 30 + 10 + 20 + 10) * 10 * time.Millisecond,
		"order":       (80 + 20) * 10 * time.Millisecond,
		LoadGenerator: (10 + 7 + 3) * 10 * time.Millisecond,
	}
	if len(w.CPU) != len(want) {
		t.Errorf("window CPU = %v, want %v", w.CPU, want)
	}
	for c, d := range want {
		if w.CPU[c] != d {
			t.Errorf("%s: %s, want %s", c, w.CPU[c], d)
		}
	}
	if len(w.Restarted) != 1 || w.Restarted[0] != "kafka" {
		t.Errorf("restarted = %v, want [kafka]", w.Restarted)
	}
	if w.Duration != 10*time.Second || w.Machine != 6*time.Second {
		t.Errorf("duration %s, machine %s; want 10s, 6s", w.Duration, w.Machine)
	}
	// 6 s busy − 0.8 − 1.0 − 0.2 = 4 s of others over 10 s.
	if r := w.Rest(); math.Abs(r-0.4) > 1e-9 {
		t.Errorf("rest = %v cores, want 0.4", r)
	}
}

func window(name string, sagas int, d time.Duration, cpu map[string]time.Duration, restarted ...string) CPUWindow {
	return CPUWindow{Name: name, Sagas: sagas, Duration: d, CPU: cpu, Restarted: restarted}
}

func TestCostModelSubtractsTheIdleBurn(t *testing.T) {
	ms := time.Millisecond
	idle := window("idle", 0, 30*time.Second, map[string]time.Duration{
		"postgres": 300 * ms, "connect": 6000 * ms, "order": 0, LoadGenerator: 150 * ms,
	})
	m := &CostModel{Idle: &idle, Ref: 1, Tail: 5 * time.Second, Windows: []CPUWindow{
		// 20 s, 500 sagas: connect burns 4 s idle of its 6 s; postgres 0.2 s of its 2.2 s.
		window("25/s", 500, 20*time.Second, map[string]time.Duration{
			"postgres": 2200 * ms, "connect": 6000 * ms, "order": 1000 * ms, LoadGenerator: 600 * ms,
		}),
		window("sustained 25/s", 1000, 40*time.Second, map[string]time.Duration{
			"postgres": 4400 * ms, "connect": 13000 * ms, "order": 2000 * ms, LoadGenerator: 1200 * ms,
		}),
		window("50/s", 1000, 20*time.Second, map[string]time.Duration{
			"postgres": 4200 * ms, "order": 2000 * ms, LoadGenerator: 1100 * ms,
		}, "connect"),
	}}
	profiled := window("profiled 25/s", 500, 20*time.Second, map[string]time.Duration{"postgres": 2200 * ms, "connect": 9000 * ms, "order": 1000 * ms})
	profiled.Profiled = true
	m.Windows = append(m.Windows, profiled)
	if got := m.Components(); strings.Join(got, ",") != "connect,order,postgres" {
		t.Errorf("components = %v", got)
	}
	if s, ok := m.IdleShare("connect"); !ok || math.Abs(s-0.2) > 1e-9 {
		t.Errorf("connect idle share = %v %v, want 0.2", s, ok)
	}
	if s, ok := m.IdleStack(); !ok || math.Abs(s-0.21) > 1e-9 {
		t.Errorf("idle stack = %v, want 0.21", s)
	}
	check := func(w CPUWindow, c string, want float64) {
		t.Helper()
		got, ok := m.PerSaga(w, c)
		if !ok || math.Abs(got-want) > 1e-9 {
			t.Errorf("%s %s: %v %v, want %v", w.Name, c, got, ok, want)
		}
	}
	w := m.Windows[0]
	check(w, "postgres", 4)      // (2.2 − 0.01×20) s / 500
	check(w, "connect", 4)       // (6 − 0.2×20) / 500
	check(w, "order", 2)         // 1 / 500
	check(w, LoadGenerator, 1.0) // (0.6 − 0.005×20) / 500, reported apart
	if v, ok := m.Stack(w); !ok || math.Abs(v-10) > 1e-9 {
		t.Errorf("stack of %s = %v %v, want 10 (the load generator not counted)", w.Name, v, ok)
	}
	// A restarted component leaves the window without a stack total.
	if _, ok := m.PerSaga(m.Windows[2], "connect"); ok {
		t.Error("a restarted component has a figure")
	}
	if _, ok := m.Stack(m.Windows[2]); ok {
		t.Error("a window with a restarted component has a stack total")
	}
	// The idle window's own figures are not per saga.
	if _, ok := m.PerSaga(idle, "postgres"); ok {
		t.Error("a window without sagas has a figure")
	}
	v, ref, ok := m.Headline()
	if !ok || ref.Name != "sustained 25/s" || math.Abs(v-(4+5+2)) > 1e-9 {
		t.Errorf("headline = %v %q %v, want 11 from the sustained run", v, ref.Name, ok)
	}
	containsAll(t, "markdown", m.Markdown(),
		"CPU-ms per saga: 11.0\n",
		"the load generator (this bench) used 1.0 ms per saga more, not counted",
		"burns **21.0 % of one core**",
		"| component | idle, % of a core | 25/s | sustained 25/s | 50/s | profiled 25/s |",
		"| connect | 20.0 | 4.00 | 5.00 | restarted | 10.00 |",
		"| **stack** | **21.0** | **10.00** | **11.00** | – | **16.00** |",
		// 25/s: (2.2 + 6 + 1) s / 500; the restarted window has none.
		"| stack, idle not subtracted | – | 18.40 | 19.40 | – | 24.40 |",
		"| sagas in the window | – | 500 | 1000 | 1000 | 500 |",
		"The profiled 25/s window ran the profilers")
	png := filepath.Join(t.TempDir(), "cpu.png")
	if err := m.Plot(png, time.Now()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(raw, []byte("\x89PNG")) {
		t.Errorf("plot: %v, %d bytes", err, len(raw))
	}
}

func TestCostModelNamesWhatHasNoFigure(t *testing.T) {
	idle := window("idle", 0, 30*time.Second, map[string]time.Duration{"postgres": time.Second}, "order")
	m := &CostModel{Idle: &idle, Ref: 0, Windows: []CPUWindow{
		window("sustained 25/s", 100, 10*time.Second, map[string]time.Duration{"postgres": 2 * time.Second, "order": time.Second}),
	}}
	containsAll(t, "markdown", m.Markdown(),
		"CPU-ms per saga: n/a (the sustained 25/s window has no figure for order: restarted during it or during the idle baseline)",
		"| order | restarted | – |", "| postgres | 3.3 | 16.67 |")
	m.Ref = -1
	containsAll(t, "markdown", m.Markdown(), "CPU-ms per saga: n/a (no reference window")
}

func TestCostModelWithoutIdleHasNoFigure(t *testing.T) {
	m := &CostModel{Ref: 0, Windows: []CPUWindow{window("25/s", 10, time.Second, map[string]time.Duration{"order": time.Second})}}
	if _, ok := m.PerSaga(m.Windows[0], "order"); ok {
		t.Error("a figure without an idle baseline")
	}
	if md := m.Markdown(); !strings.Contains(md, "CPU-ms per saga: n/a") {
		t.Errorf("markdown: %s", md)
	}
}

// TestPostgresByProcess checks the split of Postgres's CPU by child process: a backend alive at
// both samples counts its difference, one born in the window all of its time, one that exited
// lands with the postmaster in PostgresRest; and the context switches of the component's threads.
func TestPostgresByProcess(t *testing.T) {
	f := newFakeStack(t, map[string]int{"postgres": 100})
	f.machine(0, 0)
	cmd := func(pid int, line string) {
		if err := os.WriteFile(filepath.Join(f.proc, strconv.Itoa(pid), "cmdline"), []byte(strings.ReplaceAll(line, " ", "\x00")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	status := func(pid int, vol uint64) {
		dir := filepath.Join(f.proc, strconv.Itoa(pid), "task", strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		st := fmt.Sprintf("voluntary_ctxt_switches:\t%d\nnonvoluntary_ctxt_switches:\t1\n", vol)
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(st), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.set(100, 1, 5, [4]uint64{10, 0, 0, 0})
	f.set(101, 100, 6, [4]uint64{20, 0, 0, 0}) // lives through the window
	cmd(101, "postgres: order_svc order_db 127.0.0.1(4000) idle")
	f.set(102, 100, 7, [4]uint64{30, 0, 0, 0}) // exits during it
	cmd(102, "postgres: postgres test_abc 127.0.0.1(4001) idle")
	status(100, 10)
	status(101, 100)
	m := &CPUMeter{Proc: procstat.FS{Root: f.proc}, PidDir: f.pidDir, Self: 999}
	from, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	f.gone(102)
	f.set(100, 1, 5, [4]uint64{10, 0, 35, 0}) // the exited backend's 30 + 5 more
	f.set(101, 100, 6, [4]uint64{50, 0, 0, 0})
	f.set(103, 100, 9, [4]uint64{7, 0, 0, 0}) // born in the window
	cmd(103, "postgres: walsender debezium_order 127.0.0.1(4002) START_REPLICATION")
	status(101, 160)
	to, err := m.Sample()
	if err != nil {
		t.Fatal(err)
	}
	w := NewCPUWindow("w", 1, 10, from, to)
	want := map[string]time.Duration{
		"order_svc@order_db": procstat.Ticks(30),
		"walsender":          procstat.Ticks(7),
		PostgresRest:         procstat.Ticks(10+35+50+7) - procstat.Ticks(10+20+30) - procstat.Ticks(37),
	}
	for r, d := range want {
		if w.PostgresBy[r] != d {
			t.Errorf("%s: %v, want %v (all: %v)", r, w.PostgresBy[r], d, w.PostgresBy)
		}
	}
	if sw := w.Switches[Postgres]; sw.Voluntary != 60 {
		t.Errorf("postgres switches %+v, want 60 voluntary (the backend's 160 − 100)", sw)
	}
}
