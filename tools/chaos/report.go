package chaos

import (
	"context"
	"fmt"
	"image/color"
	"os"
	"os/exec"
	"outboxsaga.dev/tools/latency"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"outboxsaga.dev/tools/load"
)

// Point is one bucket of the timeline.
type Point struct {
	At         time.Time
	Throughput float64       // orders reaching a terminal status per second
	P50, P99   time.Duration // order → terminal latency of the orders that became terminal in the bucket
}

const bucket = 5 * time.Second

// timeline buckets the orders by the moment they became terminal (their updatedAt).
func (r *Runner) timeline(ctx context.Context, rec *load.Record) ([]Point, error) {
	snap, err := r.checker.TakeSnapshot(ctx, rec)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	lat := map[int64][]time.Duration{}
	for _, o := range snap.Orders {
		if o.UpdatedAt.IsZero() || o.CreatedAt.IsZero() {
			continue
		}
		b := o.UpdatedAt.Truncate(bucket).Unix()
		lat[b] = append(lat[b], o.UpdatedAt.Sub(o.CreatedAt))
	}
	keys := make([]int64, 0, len(lat))
	for k := range lat {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []Point
	if len(keys) == 0 {
		return out, nil
	}
	for k := keys[0]; k <= keys[len(keys)-1]; k += int64(bucket.Seconds()) {
		ls := lat[k] // empty buckets stay in: a stall shows as zero throughput
		slices.Sort(ls)
		out = append(out, Point{At: time.Unix(k, 0), Throughput: float64(len(ls)) / bucket.Seconds(),
			P50: latency.Percentile(ls, 50), P99: latency.Percentile(ls, 99)})
	}
	return out, nil
}

// Plot draws throughput and latency over time with the kills marked, into path (PNG).
func Plot(o *Outcome, path string) error {
	if len(o.Timeline) == 0 {
		return fmt.Errorf("plot: no timeline")
	}
	t0 := o.Timeline[0].At
	secs := func(t time.Time) float64 { return t.Sub(t0).Seconds() }
	tp, p50, p99 := plotter.XYs{}, plotter.XYs{}, plotter.XYs{}
	maxTP, maxLat := 1.0, 1.0
	for _, p := range o.Timeline {
		tp = append(tp, plotter.XY{X: secs(p.At), Y: p.Throughput})
		p50 = append(p50, plotter.XY{X: secs(p.At), Y: p.P50.Seconds()})
		p99 = append(p99, plotter.XY{X: secs(p.At), Y: p.P99.Seconds()})
		maxTP, maxLat = max(maxTP, p.Throughput), max(maxLat, p.P99.Seconds())
	}
	top := plot.New()
	top.Title.Text = fmt.Sprintf("chaos run %s: %d kills (dashed lines, one color per component)", o.Started.UTC().Format("2006-01-02 15:04"), len(o.Kills))
	top.X.Label.Text = "seconds since start"
	top.Y.Label.Text = "orders terminal / s"
	bottom := plot.New()
	bottom.X.Label.Text = "seconds since start"
	bottom.Y.Label.Text = "order → terminal latency (s)"
	inLegend := map[string]bool{}
	for _, k := range o.Kills {
		c := killColors[k.label()]
		l := addMark(top, secs(k.At), maxTP, c)
		addMark(bottom, secs(k.At), maxLat, c)
		if l != nil && !inLegend[k.label()] {
			inLegend[k.label()] = true
			top.Legend.Add("kill "+k.label(), l)
		}
	}
	if o.WAL.Ran && !o.WAL.StoppedAt.IsZero() {
		gray := color.NRGBA{R: 90, G: 90, B: 90, A: 255}
		addMark(top, secs(o.WAL.StoppedAt), maxTP, gray)
		addMark(top, secs(o.WAL.RestartedAt), maxTP, gray)
		addText(top, secs(o.WAL.StoppedAt), maxTP*1.05, "Connect stopped (WAL) ")
		addText(top, secs(o.WAL.RestartedAt), maxTP*1.12, "and restarted")
	}
	// The data over the marks.
	if err := addLine(top, tp, "throughput", color.Black); err != nil {
		return err
	}
	if err := addLine(bottom, p50, "p50", color.RGBA{G: 120, A: 255}); err != nil {
		return err
	}
	if err := addLine(bottom, p99, "p99", color.RGBA{R: 200, A: 255}); err != nil {
		return err
	}
	// Room above the data for the legends.
	top.Y.Min, top.Y.Max = 0, maxTP*1.7
	bottom.Y.Min, bottom.Y.Max = 0, maxLat*1.3
	top.Legend.Top, bottom.Legend.Top = true, true
	top.Legend.Left = true // the WAL marks' labels are at the right end
	top.Legend.Padding = vg.Points(2)
	const w, h = 14 * vg.Inch, 4 * vg.Inch
	img := vgimgCanvas(w, 2*h)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(10), PadX: vg.Points(10), PadTop: vg.Points(5), PadBottom: vg.Points(5), PadLeft: vg.Points(5), PadRight: vg.Points(5)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, draw.New(img))
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	return savePNG(img, path)
}

func addLine(p *plot.Plot, xys plotter.XYs, name string, c color.Color) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	l.Color = c
	l.Width = vg.Points(1.2)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

// killColors tells the components' kill marks apart.
var killColors = map[string]color.Color{
	"postgres":     color.NRGBA{R: 31, G: 119, B: 180, A: 170},
	"kafka":        color.NRGBA{R: 255, G: 127, B: 14, A: 200},
	"connect":      color.NRGBA{R: 148, G: 103, B: 189, A: 200},
	"order":        color.NRGBA{R: 44, G: 160, B: 44, A: 170},
	"inventory":    color.NRGBA{R: 140, G: 86, B: 75, A: 170},
	"payment":      color.NRGBA{R: 227, G: 119, B: 194, A: 200},
	"shipping":     color.NRGBA{R: 188, G: 189, B: 34, A: 220},
	"notification": color.NRGBA{R: 23, G: 190, B: 207, A: 220},
	"webhooksink":  color.NRGBA{R: 214, G: 39, B: 40, A: 170},
	"catalog":      color.NRGBA{R: 127, G: 127, B: 127, A: 200},
	// The cluster's kinds.
	KillBroker:          color.NRGBA{R: 255, G: 127, B: 14, A: 200},
	KillController:      color.NRGBA{R: 214, G: 39, B: 40, A: 200},
	KillWorker:          color.NRGBA{R: 148, G: 103, B: 189, A: 200},
	KillInstance:        color.NRGBA{R: 44, G: 160, B: 44, A: 170},
	KillBrokerAndWorker: color.NRGBA{R: 140, G: 86, B: 75, A: 200},
}

// label is what the plot and the report group the kill under: its kind (the component on the
// single node).
func (k Kill) label() string {
	if k.Kind != "" {
		return k.Kind
	}
	return k.Component
}

// addMark draws a dashed vertical line at x from 0 to height and returns it (nil if it could not).
func addMark(p *plot.Plot, x, height float64, c color.Color) *plotter.Line {
	l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: height}})
	if err != nil {
		return nil
	}
	l.Color = c
	l.Width = vg.Points(1)
	l.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
	p.Add(l)
	return l
}

// addText writes text ending at (x, y).
func addText(p *plot.Plot, x, y float64, text string) {
	ls, err := plotter.NewLabels(plotter.XYLabels{XYs: []plotter.XY{{X: x, Y: y}}, Labels: []string{text}})
	if err != nil {
		return
	}
	for i := range ls.TextStyle {
		ls.TextStyle[i].XAlign = draw.XRight
	}
	p.Add(ls)
}

// ReportFiles returns the report's and the plot's file names: REPORT.md and timeline.png, or
// REPORT-cluster.md and timeline-cluster.png for the cluster's run.
func (o *Outcome) ReportFiles() (report, plot string) {
	if o.Cluster {
		return "REPORT-cluster.md", "timeline-cluster.png"
	}
	return "REPORT.md", "timeline.png"
}

// WriteReport writes the report and the timeline plot (ReportFiles) into dir.
func WriteReport(o *Outcome, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	report, png := o.ReportFiles()
	if err := Plot(o, filepath.Join(dir, png)); err != nil {
		return err
	}
	var b strings.Builder
	o.markdown(&b)
	if err := os.WriteFile(filepath.Join(dir, report), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func cmdOut(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "(" + name + ": " + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func (o *Outcome) markdown(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	r := o.Result
	if o.Cluster {
		p("# Chaos report: the cluster topology")
		p("")
		p("Written by `TOPOLOGY=cluster make chaos` (tools/cmd/chaos) on %s; the run took %s.", o.Started.UTC().Format(time.RFC3339), o.Finished.Sub(o.Started).Round(time.Second))
		p("Three KRaft nodes (broker and controller each), two Connect workers in one group, two instances of every saga service behind the proxy; every topic 3 replicas, `min.insync.replicas=2`.")
	} else {
		p("# Chaos report")
		p("")
		p("Written by `make chaos` (tools/cmd/chaos) on %s; the run took %s.", o.Started.UTC().Format(time.RFC3339), o.Finished.Sub(o.Started).Round(time.Second))
	}
	p("")
	p("## Machine")
	p("")
	p("- `nproc`: %s; Go %s; %s", cmdOut("nproc"), runtime.Version(), cmdOut("uname", "-sr"))
	p("- `free -m`:")
	p("")
	p("```")
	p("%s", cmdOut("free", "-m"))
	p("```")
	p("")
	p("- %s", firstLine(cmdOut("psql", "--version")))
	p("- %s", firstLine(cmdOut("java", "-version")))
	p("")
	p("## Result")
	p("")
	if o.Cycles < o.Asked {
		p("Only %d of the %d cycles asked for fitted the time budget.", o.Cycles, o.Asked)
		p("")
	}
	verdict := "PASS"
	if !o.Passed() {
		verdict = "FAIL"
	}
	p("**%s**", verdict)
	p("")
	p("| figure | value |")
	p("| --- | --- |")
	p("| kill cycles | %d (asked: %d) |", o.Cycles, o.Asked)
	p("| kills (SIGKILL) | %d: %s |", len(o.Kills), o.killsPerComponent())
	p("| orders placed (accepted, incl. %d probes) | %d |", o.probeCount(), len(o.Record.Orders))
	p("| requests sent / failed while a component was down / not sent (all workers busy) | %d / %d / %d |", o.Record.Stats.Sent, o.Record.Stats.Errors, o.Record.Stats.Dropped)
	if r != nil {
		p("| terminal statuses | %s |", formatCounts(r.Statuses))
		p("| Kafka records of these orders | %d |", r.KafkaRecords)
		p("| Kafka-level duplicates seen (same event id delivered again) | %d |", r.KafkaDuplicates)
		p("| business effects doubled (must be 0) | %d |", r.DoubledEffects)
		p("| orders lost (must be 0) | %d |", r.Lost)
		p("| saga events of these orders in a service's dead letters (must be 0) | %d |", r.DeadLettered)
		p("| webhook POSTs that repeated a key (allowed: at least once, same key) | %d |", r.NotificationRepeats)
		for n := 1; n <= 6; n++ {
			p("| invariant %d violations (checked %d) | %d |", n, r.Checked[n], r.Count(n))
		}
		p("| invariant 8 (catalog) violations (checked %d) | %d |", r.Checked[8], r.Count(8))
		p("| orders refused 409 sold_out (the order service knew; not an error) | %d |", o.Record.Stats.SoldOut)
	}
	rec := o.recoveries()
	p("| recovery kill → orders complete again, p50 / p99 / max | %s / %s / %s |", pct(rec, 50), pct(rec, 99), pct(rec, 100))
	if o.QuiesceErr != "" {
		p("| quiescence | %s |", o.QuiesceErr)
	}
	p("")
	if r != nil && len(r.Violations) > 0 {
		p("### Violations")
		p("")
		for _, v := range r.Violations {
			p("- invariant %d, %s: %s", v.Invariant, v.Subject, v.Detail)
		}
		p("")
	}
	p("## Phases")
	p("")
	for _, ph := range []struct {
		name string
		res  PhaseResult
	}{{"Replay (every group reset to the earliest offset)", o.Replay}, {"Poison and duplicates", o.Poison},
		{"Second instance of each consumer", o.Extras}, {"Webhook down (the sink stopped under load)", o.Webhook}} {
		if !ph.res.Ran {
			why := "not run in this variant"
			if o.Cluster {
				why = "not run on the cluster (it assumes one instance of each component; the single node's report has it)"
			}
			p("- **%s**: %s", ph.name, why)
			continue
		}
		p("- **%s**: %s — %s", ph.name, okWord(ph.res.OK()), ph.res.Summary)
		for _, pr := range ph.res.Problems {
			p("  - %s", pr)
		}
	}
	p("- **Live API fuzz**: %s — %d random requests, statuses %v; %d valid orders at the edges of the bounds (schema-aware generator), all accepted and terminal",
		okWord(len(o.Fuzz.Problems) == 0), o.Fuzz.Requests, o.Fuzz.ByStatus, o.Fuzz.Extreme)
	for _, pr := range o.Fuzz.Problems {
		p("  - %s", pr)
	}
	for _, w := range o.Whole {
		p("- **Invariant 7 after %s** (every connector task RUNNING, a plain order completes): %s — the order completed in %s",
			w.After, okWord(len(w.Problems) == 0), w.ProbeTook.Round(time.Millisecond))
		for _, pr := range w.Problems {
			p("  - %s", pr)
		}
	}
	p("")
	o.walMarkdown(p)
	p("## Kills")
	p("")
	_, png := o.ReportFiles()
	p("![timeline](%s)", png)
	p("")
	o.perKindMarkdown(p)
	p("| cycle | kind | killed | when | restarted after | orders complete again after | POSTs sent / failed meanwhile |")
	p("| --- | --- | --- | --- | --- | --- | --- |")
	for _, k := range o.Kills {
		rec := k.Recovery().Round(time.Millisecond).String()
		if k.WhileDown {
			rec += " (while down)"
		}
		if k.RecoveryErr != "" {
			rec += " (" + k.RecoveryErr + ")"
		}
		if k.Note == restartNote {
			rec = "(not waited: the next kill lands in the rebalance)"
		}
		p("| %d | %s | %s | %s | %s | %s | %d / %d |", k.Cycle, k.label(), k.Component, k.Note, k.Restarted.Sub(k.At).Round(time.Millisecond), rec, k.Sent, k.Failed)
	}
}

// perKindMarkdown is the table by kind of kill: how many, the order POSTs that failed from the
// kill until orders completed again (the API's availability during it), and the recovery times.
func (o *Outcome) perKindMarkdown(p func(string, ...any)) {
	type agg struct {
		kills, whileDown int
		sent, failed     int64
		rec              []time.Duration
	}
	by := map[string]*agg{}
	var kinds []string
	for _, k := range o.Kills {
		if k.Note == restartNote {
			continue
		}
		a := by[k.label()]
		if a == nil {
			a = &agg{}
			by[k.label()] = a
			kinds = append(kinds, k.label())
		}
		a.kills++
		if k.WhileDown {
			a.whileDown++
		}
		a.sent += k.Sent
		a.failed += k.Failed
		a.rec = append(a.rec, k.Recovery())
	}
	sort.Strings(kinds)
	p("By kind of kill (the rebalance restarts left out). POSTs are counted from the kill until a probe order completed again; recovery is kill → that probe's completion. On the cluster, a kind it must survive (a broker, the controller, a worker, an instance, a broker and a worker) is probed before its restart: \"completed while down\" counts the kills after which an order completed with the killed member still down.")
	p("")
	p("| kind | kills | completed while down | POSTs sent | failed | available | recovery p50 / max |")
	p("| --- | --- | --- | --- | --- | --- | --- |")
	for _, kind := range kinds {
		a := by[kind]
		slices.Sort(a.rec)
		avail := "-"
		if a.sent > 0 {
			avail = fmt.Sprintf("%.2f %%", 100*float64(a.sent-a.failed)/float64(a.sent))
		}
		p("| %s | %d | %d | %d | %d | %s | %s / %s |", kind, a.kills, a.whileDown, a.sent, a.failed, avail, pct(a.rec, 50), pct(a.rec, 100))
	}
	p("")
}

func (o *Outcome) walMarkdown(p func(string, ...any)) {
	w := o.WAL
	p("## WAL safety (Connect stopped under load)")
	p("")
	if !w.Ran {
		if o.Cluster {
			p("not run on the cluster (it stops the one Connect worker of the single node; the single node's report has it)")
			p("")
			return
		}
		p("not run")
		p("")
		return
	}
	p("Connect was stopped for %s while orders kept coming. `max_slot_wal_keep_size` = %s.", w.Outage, mib(w.MaxKeep))
	p("")
	p("| slot | peak WAL retained (current − restart_lsn) | peak lag (current − confirmed_flush) |")
	p("| --- | --- | --- |")
	names := make([]string, 0, len(w.Retained))
	for n := range w.Retained {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p("| %s | %s | %s |", n, mib(w.Retained[n]), mib(w.PeakLag[n]))
	}
	p("")
	p("- within max_slot_wal_keep_size: **%v**%s", w.WithinCap, ifNonEmpty(" (", w.Err, ")"))
	p("- ingest before the outage: %.1f events/s reaching Kafka", w.IngestRate)
	p("- catch-up after restart (Connect's start included; done when every saga topic has received an event written after the restart): %d events in %s = **%.1f events/s** (%.1fx the ingest rate); slot lag drained at %s/s",
		w.Backlog, w.CatchUp.Round(time.Millisecond), w.CatchUpRate, w.CatchUpRate/max(w.IngestRate, 0.001), mib(int64(w.LagDrain)))
	p("")
}

// Passed reports whether the run found nothing wrong.
func (o *Outcome) Passed() bool {
	for _, w := range o.Whole {
		if len(w.Problems) > 0 {
			return false
		}
	}
	return o.Result != nil && o.Result.OK() && o.Replay.OK() && o.Poison.OK() && o.Extras.OK() && o.Webhook.OK() &&
		len(o.Fuzz.Problems) == 0 && (!o.WAL.Ran || o.WAL.WithinCap)
}

func (o *Outcome) probeCount() int { return o.Probes }

func (o *Outcome) recoveries() []time.Duration {
	var out []time.Duration
	for _, k := range o.Kills {
		if k.Note != restartNote {
			out = append(out, k.Recovery())
		}
	}
	slices.Sort(out)
	return out
}

func (o *Outcome) killsPerComponent() string {
	c := map[string]int{}
	for _, k := range o.Kills {
		c[k.label()]++
	}
	return formatCounts(c)
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func pct(sorted []time.Duration, p float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	return latency.Percentile(sorted, p).Round(time.Millisecond).String()
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "PROBLEMS"
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

func ifNonEmpty(pre, s, post string) string {
	if s == "" {
		return ""
	}
	return pre + s + post
}

func vgimgCanvas(w, h vg.Length) *vgimg.Canvas { return vgimg.New(w, h) }

func savePNG(c *vgimg.Canvas, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
