package bench

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"outboxsaga.dev/tools/procstat"
)

// ProfileConfig says how to profile the stack.
type ProfileConfig struct {
	// PidDir holds the stack's pid files: every component is profiled that can be.
	PidDir string
	// Dir is where the raw profiles go (<component>.pb.gz, <component>.jfr).
	Dir string
	// Duration is how long every profile runs (all at once).
	Duration time.Duration
	// AdminToken opens the services' /debug/pprof/.
	AdminToken string
}

// Profile is one component's profile.
type Profile struct {
	Component string
	// Kind is "pprof" (a Go program's CPU profile) or "jfr" (a JVM's Flight Recorder); ""
	// when the component was not profiled.
	Kind string
	// File is the raw profile.
	File string
	// Summary is its top frames, in Markdown.
	Summary string
	// Err says why there is no profile or no summary.
	Err string
}

// TakeProfiles profiles every component of cfg.PidDir at once, for cfg.Duration: a JVM (Kafka,
// Connect) with JFR through jcmd, a Go program with the CPU profile of its /debug/pprof/ (found
// on one of the ports it listens on); any other (Postgres) is listed as not profiled.
// Summarize reads them afterwards (not while the load runs: it costs CPU).
func TakeProfiles(ctx context.Context, cfg ProfileConfig) ([]Profile, error) {
	comps, err := Components(cfg.PidDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	out := make([]Profile, len(comps))
	var wg sync.WaitGroup
	for i, c := range comps {
		wg.Go(func() { out[i] = profile(ctx, cfg, c) })
	}
	wg.Wait()
	return out, nil
}

// profile profiles one component.
func profile(ctx context.Context, cfg ProfileConfig, c Component) Profile {
	p := Profile{Component: c.Name}
	exe, err := procstat.Proc.Exe(c.PID)
	if err != nil {
		p.Err = fmt.Sprintf("not running: %v", err)
		return p
	}
	if filepath.Base(exe) == "java" {
		p.Kind, p.File = "jfr", filepath.Join(cfg.Dir, c.Name+".jfr")
		if err := recordJFR(ctx, c.PID, cfg.Duration, p.File); err != nil {
			p.Err = err.Error()
		}
		return p
	}
	// A Go program carries its build information; the running binary is read through
	// /proc/<pid>/exe, so a rebuild on disk does not matter.
	if _, err := buildinfo.ReadFile(filepath.Join(procstat.Proc.Root, fmt.Sprint(c.PID), "exe")); err != nil {
		p.Err = "not profiled: neither a JVM nor a Go program"
		return p
	}
	base, refused := pprofURL(ctx, c.PID, cfg.AdminToken)
	switch {
	case refused:
		p.Err = "not profiled: its /debug/pprof/ refused the admin token (ADMIN_TOKEN, else $STACK_DIR/admin-token)"
		return p
	case base == "":
		p.Err = "not profiled: a Go program that serves no /debug/pprof/"
		return p
	}
	p.Kind, p.File = "pprof", filepath.Join(cfg.Dir, c.Name+".pb.gz")
	if err := fetchCPUProfile(ctx, base, cfg, p.File); err != nil {
		p.Err = err.Error()
	}
	return p
}

// Summarize fills in the summary of every profile taken: its top frames.
func Summarize(ctx context.Context, profiles []Profile, top int) {
	for i, p := range profiles {
		if p.Kind == "" || p.Err != "" {
			continue
		}
		sum := SummarizePprof
		if p.Kind == "jfr" {
			sum = SummarizeJFR
		}
		var err error
		if profiles[i].Summary, err = sum(ctx, p.File, top); err != nil {
			profiles[i].Err = err.Error()
		}
	}
}

// pprofURL is http://127.0.0.1:<port>/debug/pprof/ on the first port pid listens on that serves
// it to the admin token, or "" (refused: one answered 401).
func pprofURL(ctx context.Context, pid int, token string) (u string, refused bool) {
	ports, err := procstat.Proc.ListenPorts(pid)
	if err != nil {
		return "", false
	}
	sort.Ints(ports)
	for _, port := range ports {
		u := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", port)
		resp, err := adminGet(ctx, u, token, 2*time.Second)
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return u, false
		case http.StatusUnauthorized:
			refused = true
		}
	}
	return "", refused
}

// adminGet GETs u with the admin token, within timeout.
func adminGet(ctx context.Context, u, token string, timeout time.Duration) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return (&http.Client{Timeout: timeout}).Do(req)
}

// fetchCPUProfile takes a CPU profile of cfg.Duration from the pprof at base into path.
func fetchCPUProfile(ctx context.Context, base string, cfg ProfileConfig, path string) error {
	secs := max(int(cfg.Duration.Seconds()), 1)
	resp, err := adminGet(ctx, fmt.Sprintf("%sprofile?seconds=%d", base, secs), cfg.AdminToken, cfg.Duration+30*time.Second)
	if err != nil {
		return fmt.Errorf("CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("CPU profile: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("CPU profile: %w", err)
	}
	return f.Close()
}

// jfrName names the bench's recording in the JVM.
const jfrName = "bench-profile"

// jfrStartArgs are the arguments of JFR.start for a recording of d: the "profile" settings, less
// the events that record the JVM's environment and system properties (the environment is where a
// process gets its secrets; a profile is committed under docs/bench/profiles/).
func jfrStartArgs(d time.Duration) []string {
	return []string{"JFR.start", "name=" + jfrName, "settings=profile", fmt.Sprintf("duration=%ds", int((d + time.Minute).Seconds())),
		"jdk.InitialEnvironmentVariable#enabled=false", "jdk.InitialSystemProperty#enabled=false"}
}

// recordJFR records pid's Flight Recorder (the "profile" settings: execution samples every
// 10 ms) for d into path, through jcmd (the JDK's, as the JVM's user). The recording is started
// with a duration a minute longer than d, so that it ends by itself should the bench die.
func recordJFR(ctx context.Context, pid int, d time.Duration, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	_ = os.Remove(abs)
	jcmd := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "jcmd", append([]string{fmt.Sprint(pid)}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("jcmd %d %s: %w: %s", pid, args[0], err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := jcmd(jfrStartArgs(d)...); err != nil {
		return err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	if err := jcmd("JFR.stop", "name="+jfrName, "filename="+abs); err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("JFR of %d: no recording written: %w", pid, err)
	}
	return nil
}

// SummarizePprof is the top frames of a Go CPU profile, flat and cumulative, as `go tool pprof
// -top` prints them (from its Duration line on).
func SummarizePprof(ctx context.Context, path string, top int) (string, error) {
	var b strings.Builder
	for _, order := range []struct{ name, flag string }{{"flat", "-flat"}, {"cumulative", "-cum"}} {
		out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", order.flag, fmt.Sprintf("-nodecount=%d", top), path).Output()
		if err != nil {
			return "", fmt.Errorf("go tool pprof -top %s: %w", path, err)
		}
		text := string(out)
		if i := strings.Index(text, "Duration:"); i >= 0 {
			text = text[i:]
		}
		fmt.Fprintf(&b, "Top %d by %s time:\n\n```text\n%s```\n\n", top, order.name, text)
	}
	return b.String(), nil
}

// SummarizeJFR is the hot methods of a Flight Recorder file: its jdk.ExecutionSample events
// (a thread running Java code, sampled) read with the JDK's `jfr print`, counted by the top
// frame (flat), by every frame of the stack (cumulative, a method once per sample) and by
// thread (digits in the names folded, so a pool is one line).
func SummarizeJFR(ctx context.Context, path string, top int) (string, error) {
	cmd := exec.CommandContext(ctx, "jfr", "print", "--events", "jdk.ExecutionSample", "--stack-depth", "64", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("jfr print: %w", err)
	}
	s, perr := ParseJFRSamples(stdout)
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("jfr print %s: %w", path, err)
	}
	if perr != nil {
		return "", perr
	}
	return s.Markdown(top), nil
}

// JFRSamples counts the execution samples of a recording.
type JFRSamples struct {
	Total int
	// Flat counts samples by their top frame, Cum by every method on their stack (once per
	// sample), Threads by thread.
	Flat, Cum, Threads map[string]int
	// Truncated counts the samples whose stack was deeper than printed.
	Truncated int
}

var (
	jfrThread = regexp.MustCompile(`^\s*sampledThread = "(.*)" \(javaThreadId = \d+\)`)
	jfrLine   = regexp.MustCompile(` line: \d+$`)
	digits    = regexp.MustCompile(`\d+`)
)

// ParseJFRSamples reads the text `jfr print --events jdk.ExecutionSample` writes: one block
// per sample, its thread, then its stack top first between "stackTrace = [" and "]".
func ParseJFRSamples(r io.Reader) (JFRSamples, error) {
	s := JFRSamples{Flat: map[string]int{}, Cum: map[string]int{}, Threads: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var (
		inStack bool
		frames  []string
	)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "jdk.ExecutionSample {":
			s.Total++
		case jfrThread.MatchString(line):
			s.Threads[digits.ReplaceAllString(jfrThread.FindStringSubmatch(line)[1], "N")]++
		case trimmed == "stackTrace = [":
			inStack, frames = true, frames[:0]
		case inStack && trimmed == "]":
			inStack = false
			if len(frames) > 0 {
				s.Flat[frames[0]]++
			}
			seen := map[string]bool{}
			for _, f := range frames {
				if !seen[f] {
					seen[f] = true
					s.Cum[f]++
				}
			}
		case inStack && trimmed == "...":
			s.Truncated++
		case inStack:
			frames = append(frames, jfrLine.ReplaceAllString(trimmed, ""))
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read jfr print: %w", err)
	}
	return s, nil
}

// Markdown renders the top methods (flat and cumulative) and threads.
func (s JFRSamples) Markdown(top int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d execution samples (threads running Java code; a thread in native code or the JVM's own threads are not sampled)", s.Total)
	if s.Truncated > 0 {
		fmt.Fprintf(&b, ", %d of them with stacks deeper than 64 frames (cumulative counts miss their bottom)", s.Truncated)
	}
	b.WriteString(".\n\n")
	table := func(title string, counts map[string]int) {
		fmt.Fprintf(&b, "| %s | samples | %% |\n|---|---:|---:|\n", title)
		for _, kv := range topCounts(counts, top) {
			fmt.Fprintf(&b, "| `%s` | %d | %.1f |\n", strings.ReplaceAll(kv.key, "|", `\|`), kv.n, 100*float64(kv.n)/float64(max(s.Total, 1)))
		}
		b.WriteString("\n")
	}
	table(fmt.Sprintf("top %d methods, flat (the sample's top frame)", top), s.Flat)
	table(fmt.Sprintf("top %d methods, cumulative (anywhere on the stack)", top), s.Cum)
	table(fmt.Sprintf("top %d threads (digits folded into N)", top), s.Threads)
	return b.String()
}

type keyCount struct {
	key string
	n   int
}

// topCounts is the n largest counts, largest first (ties by key).
func topCounts(counts map[string]int, n int) []keyCount {
	out := make([]keyCount, 0, len(counts))
	for k, v := range counts {
		out = append(out, keyCount{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].key < out[j].key
	})
	return out[:min(n, len(out))]
}

// ProfilesMarkdown renders PROFILES.md: what was profiled when (context), where the raw
// profiles are (rawDir, relative to PROFILES.md), and each component's summary.
func ProfilesMarkdown(date time.Time, context string, rawDir string, profiles []Profile) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Profiles under load — %s\n\n", date.UTC().Format("2006-01-02 15:04 MST"))
	p("Written by `make bench` with BENCH_PROFILE=1 (tools/cmd/bench). %s\n\n", context)
	p("Every component was profiled at once: the Go services through their `/debug/pprof/profile` (behind the admin token), ")
	p("Kafka and Connect with JDK Flight Recorder (`jcmd <pid> JFR.start settings=profile`, read with `jfr print --events jdk.ExecutionSample`). ")
	p("The raw profiles are in `%s/` next to this file (not committed): `go tool pprof -http=: %s/order.pb.gz`, `jfr summary %s/connect.jfr`, or JDK Mission Control.\n\n", rawDir, rawDir, rawDir)
	for _, pr := range profiles {
		switch {
		case pr.Kind == "":
			p("## %s\n\n%s.\n\n", pr.Component, pr.Err)
		case pr.Err != "":
			p("## %s (%s)\n\nNo summary: %s\n\n", pr.Component, pr.Kind, pr.Err)
		case pr.Kind == "pprof":
			p("## %s (pprof, CPU)\n\n%s", pr.Component, pr.Summary)
		default:
			p("## %s (JFR)\n\n%s", pr.Component, pr.Summary)
		}
	}
	return b.String()
}
