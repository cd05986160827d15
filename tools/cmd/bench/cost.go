package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"outboxsaga.dev/tools/bench"
)

// idle measures the stack's idle burn, the cost model's baseline, and starts the cost model
// (-idle 0: no cost model).
func (b *benchRun) idle(ctx context.Context) error {
	if b.cfg.idle <= 0 {
		return nil
	}
	w, err := b.measureIdle(ctx)
	if err != nil {
		return err
	}
	b.rep.Cost = &bench.CostModel{Idle: &w, Ref: -1, Tail: b.cfg.costTail}
	return nil
}

// measureIdle waits for the pipeline to settle, then samples the CPU of every component over
// cfg.idle with no load.
func (b *benchRun) measureIdle(ctx context.Context) (bench.CPUWindow, error) {
	if _, err := b.drain(ctx); err != nil {
		return bench.CPUWindow{}, err
	}
	if err := sleep(ctx, 2*time.Second); err != nil {
		return bench.CPUWindow{}, err
	}
	say("idle: %s with no load (the cost model's baseline)", b.cfg.idle)
	pgFrom := b.pgSample(ctx)
	from, err := b.meter.Sample()
	if err != nil {
		return bench.CPUWindow{}, err
	}
	if err := sleep(ctx, b.cfg.idle); err != nil {
		return bench.CPUWindow{}, err
	}
	to, err := b.meter.Sample()
	if err != nil {
		return bench.CPUWindow{}, err
	}
	w := bench.NewCPUWindow("idle", 0, 0, from, to)
	w.PG = b.pgWindow(ctx, pgFrom)
	if len(w.Restarted) > 0 {
		say("  restarted during the idle baseline, so without CPU figures in this run: %v", w.Restarted)
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("restarted during the idle baseline, so without CPU figures in this run: %v", w.Restarted))
	}
	var stack time.Duration
	for c, d := range w.CPU {
		if c != bench.LoadGenerator {
			stack += d
		}
	}
	say("  idle stack: %.1f %% of one core", 100*stack.Seconds()/w.Duration.Seconds())
	return w, nil
}

// stepName labels a rate step's window.
func stepName(rate float64) string { return fmt.Sprintf("%g/s", rate) }

// step runs one open-loop step once the pipeline has drained what ran before it, with its CPU
// window (the first send to cfg.costTail after the last terminal event); when the cost model
// runs, the window joins it as name. A step whose neighbours (processes outside the stack) used
// more than bench.NeighbourLimit of a core is thrown away and run again once when rerun is set,
// and marked Disturbed when it stays so. It returns the window's index in the cost model (-1: none).
func (b *benchRun) step(ctx context.Context, name string, rate float64, d time.Duration, rerun bool) (bench.StepResult, int, error) {
	for reruns := 0; ; reruns++ {
		drained, err := b.drain(ctx)
		if err != nil {
			return bench.StepResult{}, -1, err
		}
		st, w, err := b.measure(ctx, name, rate, d)
		if err != nil {
			return st, -1, err
		}
		st.Drained, st.Reruns, st.Neighbours = drained, reruns, -1
		if w != nil {
			st.Neighbours = w.Neighbours()
		}
		if st.Neighbours > bench.NeighbourLimit {
			if rerun && reruns == 0 {
				say("  neighbours used %.0f %% of a core during %s: thrown away, run again", 100*st.Neighbours, name)
				b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s: a first run was thrown away, processes outside the stack used %.0f %% of a core during it (it measured %.1f sagas/s, p50 %.1f ms, p99 %.1f ms)",
					name, 100*st.Neighbours, st.Throughput, msOf(st.Latency.P50), msOf(st.Latency.P99)))
				continue
			}
			st.Disturbed = true
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s is marked disturbed: processes outside the stack used %.0f %% of a core during it", name, 100*st.Neighbours))
		}
		if w == nil || b.rep.Cost == nil {
			return st, -1, nil
		}
		b.rep.Cost.Windows = append(b.rep.Cost.Windows, *w)
		return st, len(b.rep.Cost.Windows) - 1, nil
	}
}

// measure runs one open-loop step and measures its CPU window (nil if a sample failed).
func (b *benchRun) measure(ctx context.Context, name string, rate float64, d time.Duration) (bench.StepResult, *bench.CPUWindow, error) {
	pgFrom := b.pgSample(ctx)
	from, ferr := b.meter.Sample()
	st, err := b.load.Step(ctx, rate, d)
	if err != nil {
		return st, nil, err
	}
	if err := sleep(ctx, b.cfg.costTail); err != nil {
		return st, nil, err
	}
	to, terr := b.meter.Sample()
	if ferr != nil || terr != nil {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("no CPU figures for %s: %v", name, cmpErr(ferr, terr)))
		return st, nil, nil
	}
	w := bench.NewCPUWindow(name, rate, st.Completed+st.Canceled, from, to)
	w.PG = b.pgWindow(ctx, pgFrom)
	return st, &w, nil
}

// pgSample reads PostgreSQL's counters at a window's start (nil without them).
func (b *benchRun) pgSample(ctx context.Context) *bench.PGCounters {
	if b.pg == nil {
		return nil
	}
	c, err := b.pg.Sample(ctx)
	if err != nil {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("PostgreSQL counters: %v", err))
		return nil
	}
	return &c
}

// pgWindow reads them again at the window's end: what they moved by (nil without them).
func (b *benchRun) pgWindow(ctx context.Context, from *bench.PGCounters) *bench.PGWindow {
	if from == nil {
		return nil
	}
	to := b.pgSample(ctx)
	if to == nil {
		return nil
	}
	return bench.NewPGWindow(*from, *to)
}

// chooseRef makes the cost model's headline the sustained run's window or, without one, the
// highest step that held.
func (b *benchRun) chooseRef() {
	c := b.rep.Cost
	if c == nil || c.Ref >= 0 {
		return
	}
	best := 0.0
	for _, st := range b.rep.Steps {
		if !held(st, b.cfg.p99) || st.Rate <= best {
			continue
		}
		for i, w := range c.Windows {
			if w.Name == stepName(st.Rate) {
				c.Ref, best = i, st.Rate
			}
		}
	}
}

// profile runs a step at the profile rate (cfg.profileRate, or the sustained run's) for
// cfg.profileFor plus 5 s either side and profiles every component in its middle: pprof of the
// Go services, JFR of the JVMs. The raw profiles go to <out>/profiles/, their summaries to
// <out>/PROFILES.md; the step's CPU window joins the cost model as "profiled", beside the
// unprofiled ones, so the profilers' own cost shows.
func (b *benchRun) profile(ctx context.Context) error {
	if !b.cfg.profile {
		return nil
	}
	rate := b.cfg.profileRate
	switch {
	case rate > 0:
	case b.rep.Sustained != nil:
		rate = b.rep.Sustained.Step.Rate
	default:
		rate = b.sustainRate()
	}
	if rate <= 0 {
		return nil
	}
	const margin = 5 * time.Second
	d := b.cfg.profileFor + 2*margin
	say("profiles: %.0f orders/s for %s; every component profiled for %s from %s in", rate, d, b.cfg.profileFor, margin)
	raw := filepath.Join(b.cfg.outDir, "profiles")
	type result struct {
		profiles []bench.Profile
		err      error
	}
	done := make(chan result, 1)
	go func() {
		if err := sleep(ctx, margin); err != nil {
			done <- result{err: err}
			return
		}
		ps, err := bench.TakeProfiles(ctx, bench.ProfileConfig{PidDir: b.pids(), Dir: raw,
			Duration: b.cfg.profileFor, AdminToken: b.cfg.adminToken})
		done <- result{ps, err}
	}()
	st, window, err := b.step(ctx, fmt.Sprintf("profiled %g/s", rate), rate, d, false)
	res := <-done
	if err != nil {
		return err
	}
	if window >= 0 {
		b.rep.Cost.Windows[window].Profiled = true
	}
	if res.err != nil {
		return res.err
	}
	bench.Summarize(ctx, res.profiles, 15)
	for _, p := range res.profiles {
		if p.Err != "" {
			say("  %s: %s", p.Component, p.Err)
		}
	}
	b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("profiled step, %.0f orders/s for %s: %.1f sagas/s, p50 %.1f ms, p99 %.1f ms (profiles: PROFILES.md)",
		rate, d, st.Throughput, msOf(st.Latency.P50), msOf(st.Latency.P99)))
	about := fmt.Sprintf("The profiles cover %s in the middle of a %s step at %.0f orders/s (%.1f sagas/s completed, p50 %.1f ms, p99 %.1f ms).",
		b.cfg.profileFor, d, rate, st.Throughput, msOf(st.Latency.P50), msOf(st.Latency.P99))
	b.rep.Profiles = "PROFILES.md" // next to profiles/, which TakeProfiles made
	return writeFile(filepath.Join(b.cfg.outDir, b.rep.Profiles), bench.ProfilesMarkdown(time.Now(), about, "profiles", res.profiles))
}

// msOf is d in milliseconds.
func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
