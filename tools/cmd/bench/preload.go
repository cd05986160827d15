package main

import (
	"context"
	"time"

	"outboxsaga.dev/tools/bench"
)

// preloadCompare is the mode -preload N: cfg.preloadRate for cfg.preloadFor on the databases as
// they are (synthetic rows of an earlier preload removed first), then the same once they hold N
// synthetic sagas' rows, each after an idle baseline of its own; the synthetic rows are removed
// at the end unless -preload-keep. The report goes to <out>/PRELOAD.md.
func (b *benchRun) preloadCompare(ctx context.Context) error {
	cfg := b.preloadConfig(b.cfg.preload)
	res := &bench.PreloadResult{Sagas: cfg.Sagas, Span: cfg.Span, Kept: b.cfg.preloadKeep}
	say("preload: removing the synthetic rows of an earlier preload, if any")
	if err := bench.RemovePreload(ctx, cfg); err != nil {
		return err
	}
	var err error
	if res.Before, err = bench.PreloadRows(ctx, cfg); err != nil {
		return err
	}
	if res.Fresh, err = b.preloadRun(ctx, "fresh"); err != nil {
		return err
	}
	say("preload: the rows of %d synthetic sagas, %d per transaction", cfg.Sagas, cfg.Batch)
	start := time.Now()
	cfg.End = start.Add(-time.Minute)
	if res.After, err = bench.Preload(ctx, cfg); err != nil {
		return err
	}
	res.Took = time.Since(start)
	say("  took %s; waiting for the WAL senders to decode past it", res.Took.Round(time.Second))
	if err := bench.WaitDecoded(ctx, b.admin, 30*time.Minute, 16<<20); err != nil {
		return err
	}
	if res.Loaded, err = b.preloadRun(ctx, "preloaded"); err != nil {
		return err
	}
	if !b.cfg.preloadKeep {
		say("preload: removing the synthetic rows")
		if err := bench.RemovePreload(ctx, cfg); err != nil {
			return err
		}
	}
	b.preloaded = res
	return nil
}

// preloadConfig is the preload of n synthetic sagas with the run's batch and span, its progress
// on the bench's output.
func (b *benchRun) preloadConfig(n int) bench.PreloadConfig {
	return bench.PreloadConfig{AdminURL: b.cfg.adminURL, Sagas: n, Batch: b.cfg.preloadBatch,
		Span: b.cfg.preloadSpan, Progress: func(format string, args ...any) { say("  "+format, args...) }}
}

// preloadRun is one side of the comparison: an idle baseline, then the step.
func (b *benchRun) preloadRun(ctx context.Context, label string) (bench.PreloadRun, error) {
	idle, err := b.measureIdle(ctx)
	if err != nil {
		return bench.PreloadRun{}, err
	}
	say("%s: %.0f orders/s for %s", label, b.cfg.preloadRate, b.cfg.preloadFor)
	st, w, err := b.measure(ctx, label, b.cfg.preloadRate, b.cfg.preloadFor)
	if err != nil {
		return bench.PreloadRun{}, err
	}
	say("  %.1f sagas/s, p50 %.1f ms p99 %.1f ms, lost %d", st.Throughput, msOf(st.Latency.P50), msOf(st.Latency.P99), st.Lost)
	run := bench.PreloadRun{Step: st, Cost: bench.CostModel{Idle: &idle, Ref: 0, Tail: b.cfg.costTail}}
	if w != nil {
		run.Cost.Windows = []bench.CPUWindow{*w}
	}
	return run, nil
}
