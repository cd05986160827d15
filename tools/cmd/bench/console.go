package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"outboxsaga.dev/tools/bench"
	"outboxsaga.dev/tools/stackenv"
)

// consolePage is one page of the console the mode -console times.
type consolePage struct {
	name, path string
}

// consoleTiming is what the mode -console measured of one page.
type consoleTiming struct {
	page          consolePage
	status, bytes int
	times         []time.Duration // sorted
}

func (t consoleTiming) quantile(q float64) time.Duration {
	if len(t.times) == 0 {
		return 0
	}
	return t.times[min(len(t.times)-1, int(q*float64(len(t.times))))]
}

// consoleResult is the mode -console's report (CONSOLE.md).
type consoleResult struct {
	sagas   int
	rows    []bench.TableRows
	timings []consoleTiming
	took    time.Duration
}

// consoleLimit is the render time issue 24 allows a page with 100,000 orders in the database.
const consoleLimit = 200 * time.Millisecond

// consolePages is the mode -console N: the console's pages timed once the databases hold N
// synthetic sagas (the preload's completed sagas, a dead letter per 100 in every service), each
// page fetched as the operator, one request at a time, cfg.consoleTimes times after one warm-up:
// the time to the last byte of the answer, what a person waits for. The synthetic rows are removed
// at the end unless -preload-keep.
func (b *benchRun) consolePages(ctx context.Context) error {
	cfg := b.preloadConfig(b.cfg.console)
	cfg.End = time.Now().Add(-time.Minute)
	res := &consoleResult{sagas: cfg.Sagas}
	say("console: the rows of %d synthetic sagas, %d per transaction", cfg.Sagas, cfg.Batch)
	start := time.Now()
	var err error
	if res.rows, err = bench.Preload(ctx, cfg); err != nil {
		return err
	}
	res.took = time.Since(start)
	say("  took %s; waiting for the WAL senders to decode past it", res.took.Round(time.Second))
	if err := bench.WaitDecoded(ctx, b.admin, 30*time.Minute, 16<<20); err != nil {
		return err
	}
	base := b.cfg.consoleURL
	hc := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) (int, []byte, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, nil, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+b.cfg.adminToken)
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, body, time.Since(t0), err
	}
	// The first page's "Older" link is the cursor of the second page; its first saga's link is the
	// saga page timed.
	_, first, _, err := get("/sagas")
	if err != nil {
		return fmt.Errorf("console on %s: %w", base, err)
	}
	later := "/sagas"
	if m := regexp.MustCompile(`href="/sagas\?([^"]*before=[^"]*)"`).FindSubmatch(first); m != nil {
		later += "?" + strings.ReplaceAll(string(m[1]), "&amp;", "&")
	}
	one := "ffffffff-ffff-4fff-8000-000000000001" // synthetic saga 1, if the page links none
	if m := regexp.MustCompile(`href="/sagas/([0-9a-f-]{36})"`).FindSubmatch(first); m != nil {
		one = string(m[1])
	}
	pages := []consolePage{
		{"sagas, newest first (the stuck ones on top)", "/sagas"},
		{"sagas, a later page", later},
		{"sagas, status=COMPLETED", "/sagas?status=COMPLETED"},
		{"sagas, status=PENDING", "/sagas?status=PENDING"},
		{"sagas, reason=PAYMENT_FAILED", "/sagas?reason=PAYMENT_FAILED"},
		{"sagas, waiting=payment", "/sagas?waiting=payment"},
		{"sagas, older than 1h", "/sagas?olderThan=1h"},
		{"one saga", "/sagas/" + one},
		{"dead letters", "/dead-letters"},
		{"pipeline health", "/health"},
	}
	for _, p := range pages {
		t := consoleTiming{page: p}
		for i := range b.cfg.consoleTimes + 1 {
			status, body, d, err := get(p.path)
			if err != nil {
				return fmt.Errorf("console %s: %w", p.path, err)
			}
			t.status, t.bytes = status, len(body)
			if i > 0 { // the first is the warm-up
				t.times = append(t.times, d)
			}
		}
		slices.Sort(t.times)
		say("  %-45s %d  %6.1f ms median, %6.1f ms max  (%d kB)", p.name, t.status, msOf(t.quantile(0.5)), msOf(t.quantile(1)), t.bytes/1024)
		res.timings = append(res.timings, t)
	}
	if !b.cfg.preloadKeep {
		say("console: removing the synthetic rows")
		if err := bench.RemovePreload(ctx, cfg); err != nil {
			return err
		}
	}
	b.consoled = res
	return nil
}

// consoleMarkdown renders CONSOLE.md: the machine, then the pages' times.
func (b *benchRun) consoleMarkdown(res *consoleResult) string {
	var s strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&s, format, args...) }
	p("%s", b.rep.HeaderMarkdown(fmt.Sprintf("The console's pages with %d synthetic orders", res.sagas)))
	p("\n## Render times\n\n")
	p("The databases held the rows of %d synthetic completed sagas besides the stack's own (preloaded in %s;\n", res.sagas, res.took.Round(time.Second))
	p("a dead letter per 100 sagas in every service). Each page: one warm-up, then %d GETs one after the\n", b.cfg.consoleTimes)
	p("other as the operator; the time is to the last byte of the answer (the console's own work and the\n")
	p("services' answers it waits for). Limit: %.0f ms (issue 24).\n\n", msOf(consoleLimit))
	p("| page | path | status | median ms | p90 ms | max ms | kB | within %.0f ms |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n", msOf(consoleLimit))
	for _, t := range res.timings {
		ok := "yes"
		if t.quantile(0.9) > consoleLimit || t.status != http.StatusOK {
			ok = "**no**"
		}
		path := t.page.path
		if u, err := url.Parse(path); err == nil && u.Query().Get("before") != "" {
			path = u.Path + "?before=…"
		}
		p("| %s | `%s` | %d | %.1f | %.1f | %.1f | %d | %s |\n", t.page.name, path, t.status,
			msOf(t.quantile(0.5)), msOf(t.quantile(0.9)), msOf(t.quantile(1)), t.bytes/1024, ok)
	}
	p("\nRows in the databases during the measurement:\n\n| database | table | rows |\n| --- | --- | ---: |\n")
	for _, r := range res.rows {
		p("| %s | %s | %d |\n", r.DB, r.Table, r.Rows)
	}
	return s.String()
}

// defaultConsoleURL is the console of the stack's table.
func defaultConsoleURL() string { return stackenv.DefaultURL("console") }
