package bench

import (
	"fmt"
	"image/color"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"outboxsaga.dev/tools/latency"
)

// Sustained is the result of the sustained run.
type Sustained struct {
	Step StepResult
	Lag  []LagSample
	// ConsumerFirst/Last and SlotFirst/Last are the mean lags of the first and last third.
	ConsumerFirst, ConsumerLast float64
	SlotFirst, SlotLast         float64
	ConsumerFlat, SlotFlat      bool
	// OK is true when p99 ≤ the limit and both lags stayed flat.
	OK bool
}

// Report is everything one bench run measured.
type Report struct {
	Date    time.Time
	Machine []string // facts: CPUs, memory, kernel, versions
	// Speed is how fast the machine was at the start and at the end of the run (CPU calibration,
	// pg_test_fsync), so that a slower machine is told apart from a slower stack.
	Speed     []Speed
	Settings  []string // the tunables in effect
	Ceiling   CeilingSweep
	Steps     []StepResult
	StepHops  map[float64][]Hop
	HopTimes  HopTimes
	Sustained *Sustained
	SusHops   []Hop
	P99Limit  time.Duration
	IdleRSS   []RSS
	LoadRSS   []RSS
	// Cost is the CPU per saga per component (nil: not measured).
	Cost *CostModel
	// Profiles is the link to the profiles' summary ("": none taken).
	Profiles string
	Notes    []string
}

// header writes the title, the machine and the settings.
func (r *Report) header(b *strings.Builder, title string) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("# %s — %s\n\n", title, r.Date.UTC().Format("2006-01-02 15:04 MST"))
	p("Written by `make bench` (tools/cmd/bench). Every figure below comes from this one run on one\n")
	p("shared, noisy machine; compare figures of one run only.\n\n")
	p("## Machine and versions\n\n")
	for _, m := range r.Machine {
		p("- %s\n", m)
	}
	if len(r.Speed) > 0 {
		p("\n## Machine speed\n\nFixed work of known size, measured by the bench itself; compare a figure below with another run's\nonly when these agree (within ~10 %%).\n\n")
		for _, s := range r.Speed {
			p("- %s: %s\n", s.When, s)
		}
	}
	p("\n## Settings in effect\n\n")
	for _, s := range r.Settings {
		p("- %s\n", s)
	}
}

// HeaderMarkdown renders the report's title and what every figure of a run stands beside: the
// machine, its measured speed and the settings in effect.
func (r *Report) HeaderMarkdown(title string) string {
	var b strings.Builder
	r.header(&b, title)
	return b.String()
}

// PreloadMarkdown renders the report of a preload run (make bench -preload N): the machine,
// the settings and the comparison.
func (r *Report) PreloadMarkdown(pre *PreloadResult) string {
	var b strings.Builder
	r.header(&b, "Cost as the work grows")
	fmt.Fprintf(&b, "\n## Fresh databases against %d sagas' rows\n\n%s", pre.Sagas, pre.Markdown())
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	r.header(&b, "Saga benchmark")
	p("\n## Results\n\n")
	p("%s\n", r.Table())
	c, _ := r.Ceiling.Best()
	if s := r.Sustained; s != nil {
		verdict := "held"
		if !s.OK {
			verdict = "NOT held"
		}
		p("\nSustained: %.0f orders/s for %s — %s (p99 %.1f ms, limit %.0f ms; consumer lag mean first/last third %.0f/%.0f msgs, flat=%v; slot lag %.0f/%.0f bytes, flat=%v). Throughput/ceiling = %.2f.\n",
			s.Step.Rate, s.Step.Duration, verdict, ms(s.Step.Latency.P99), ms(r.P99Limit),
			s.ConsumerFirst, s.ConsumerLast, s.ConsumerFlat, s.SlotFirst, s.SlotLast, s.SlotFlat,
			s.Step.Throughput/max(c.PerSecond, 1))
	}
	if r.Cost != nil {
		p("\n## CPU per saga\n\n%s\n![CPU-ms per saga by component and rate](cpu-per-saga.png)\n", r.Cost.Markdown())
	}
	if len(r.Ceiling.Levels) > 0 {
		p("\n## Ceiling\n\n%s", r.Ceiling.Markdown(r.Cost))
	}
	if r.Profiles != "" {
		p("\nProfiles under load (pprof of the Go services, JFR of Kafka and Connect): [%s](%s).\n", r.Profiles, r.Profiles)
	}
	p("\n## Per-hop breakdown\n\n")
	p("debezium = envelope occurredAt (set just before the outbox insert commits) → Kafka record timestamp")
	if r.HopTimes.LogAppendTime {
		p(" (LogAppendTime: the broker's append time)")
	} else {
		p(" (CreateTime: the Connect producer's send time)")
	}
	p(";\nconsumer = Kafka record timestamp → the consuming handler's commit, read from its inbox row")
	if r.HopTimes.CommitTimestamps {
		p(" (pg_xact_commit_timestamp of processed_events' row; track_commit_timestamp = on).\n")
	} else {
		p(" (processed_at = the transaction's start; turn track_commit_timestamp on for the commit time).\n")
	}
	p("The payment service marks StockReserved in its settle transaction, after the gateway call, so its consumer hop includes the gateway.\n\n")
	for _, st := range r.Steps {
		if hops, ok := r.StepHops[st.Rate]; ok {
			p("### %.0f orders/s\n\n%s\n", st.Rate, hopTable(hops))
		}
	}
	if r.Sustained != nil && len(r.SusHops) > 0 {
		p("### Sustained run, %.0f orders/s\n\n%s\n", r.Sustained.Step.Rate, hopTable(r.SusHops))
	}
	p("## Memory (VmRSS, MiB)\n\n| process | idle | at %s |\n|---|---:|---:|\n", r.loadLabel())
	load := map[string]RSS{}
	for _, x := range r.LoadRSS {
		load[x.Name] = x
	}
	for _, x := range r.IdleRSS {
		l := load[x.Name]
		p("| %s | %.0f%s | %.0f%s |\n", x.Name, float64(x.KiB)/1024, childNote(x), float64(l.KiB)/1024, childNote(l))
	}
	if len(r.Notes) > 0 {
		p("\n## Notes\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
	}
	p("\n![order→terminal latency versus offered rate](latency-vs-rate.png)\n")
	return b.String()
}

func (r *Report) loadLabel() string {
	if r.Sustained != nil {
		return fmt.Sprintf("%.0f orders/s (sustained run)", r.Sustained.Step.Rate)
	}
	return "the highest step rate"
}

func childNote(x RSS) string {
	if x.ChildrenAnonKiB == 0 {
		return ""
	}
	return fmt.Sprintf(" (+%.0f private in children)", float64(x.ChildrenAnonKiB)/1024)
}

// Table renders the results table: the ceiling, every step and the sustained run.
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| run | offered/s | sent | completed | canceled | lost | skipped | sagas/s | p50 ms | p95 ms | p99 ms | max ms | POST p99 ms | drained before, s | neighbours, % of a core |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	if c, ok := r.Ceiling.Best(); ok {
		fmt.Fprintf(&b, "| ceiling (db only, best of the sweep: %d workers) | – | – | %d | – | – | – | %.0f | %.1f | %.1f | %.1f | %.1f | – | – | – |\n",
			c.Workers, c.Sagas, c.PerSecond, ms(c.Saga.P50), ms(c.Saga.P95), ms(c.Saga.P99), ms(c.Saga.Max))
	}
	row := func(name string, s StepResult) {
		fmt.Fprintf(&b, "| %s | %.0f | %d | %d | %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n",
			name, s.Rate, s.Sent, s.Completed, s.Canceled, s.Lost, s.Skipped, s.Throughput,
			ms(s.Latency.P50), ms(s.Latency.P95), ms(s.Latency.P99), ms(s.Latency.Max), ms(s.Post.P99),
			s.Drained.Seconds(), neighbourCell(s))
	}
	for _, s := range r.Steps {
		row(fmt.Sprintf("step %s", s.Duration), s)
	}
	if r.Sustained != nil {
		row(fmt.Sprintf("sustained %s", r.Sustained.Step.Duration), r.Sustained.Step)
	}
	return b.String()
}

// neighbourCell is a step's neighbours column: the share, marked when the step was disturbed.
func neighbourCell(s StepResult) string {
	if s.Neighbours < 0 {
		return "–"
	}
	cell := fmt.Sprintf("%.0f", 100*s.Neighbours)
	if s.Reruns > 0 {
		cell += fmt.Sprintf(" (rerun %d×)", s.Reruns)
	}
	if s.Disturbed {
		cell = "**" + cell + ", disturbed**"
	}
	return cell
}

func hopTable(hops []Hop) string {
	var b strings.Builder
	b.WriteString("| topic | hop | n | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, h := range hops {
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %.1f | %.1f | %.1f |\n",
			h.Topic, h.Name, h.N, ms(h.P50), ms(h.P95), ms(h.P99), ms(h.Max))
	}
	return b.String()
}

// Plot writes a PNG of order→terminal latency (p50, p95, p99) versus offered rate.
func (r *Report) Plot(path string) error {
	p := plot.New()
	p.Title.Text = "order → terminal latency vs offered rate (" + r.Date.UTC().Format("2006-01-02") + ")"
	p.X.Label.Text = "offered orders/s"
	p.Y.Label.Text = "latency, ms"
	series := []struct {
		name string
		get  func(latency.Summary) time.Duration
		col  color.RGBA
	}{
		{"p50", func(s latency.Summary) time.Duration { return s.P50 }, color.RGBA{R: 30, G: 120, B: 200, A: 255}},
		{"p95", func(s latency.Summary) time.Duration { return s.P95 }, color.RGBA{R: 240, G: 150, B: 20, A: 255}},
		{"p99", func(s latency.Summary) time.Duration { return s.P99 }, color.RGBA{R: 210, G: 40, B: 40, A: 255}},
	}
	for _, s := range series {
		pts := make(plotter.XYs, 0, len(r.Steps))
		for _, st := range r.Steps {
			if st.Latency.N > 0 {
				pts = append(pts, plotter.XY{X: st.Rate, Y: ms(s.get(st.Latency))})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", s.name, err)
		}
		line.Color, points.Color = s.col, s.col
		p.Add(line, points)
		p.Legend.Add(s.name, line, points)
	}
	limit := plotter.NewFunction(func(float64) float64 { return ms(r.P99Limit) })
	limit.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	p.Add(limit)
	p.Legend.Add(fmt.Sprintf("p99 limit %.0f ms", ms(r.P99Limit)), limit)
	p.Legend.Top, p.Legend.Left = true, true
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("save plot %s: %w", path, err)
	}
	return nil
}
