// Command maketest is `make test`: every test of every module, against the real stack. It is run
// by scripts/test.sh (with scripts/lib.sh's settings in its environment):
//
//  1. gofmt and go vet on every module of go.work (-vet-only: this step only);
//  2. a fresh `git clone` into a 0700 directory brings its own stack up as the cluster topology,
//     completes an order, runs the cluster's short check (a broker and a Connect worker SIGKILLed
//     under load, the invariants) and is cleaned again (tools/clonetest; before this stack
//     starts: one stack at a time);
//  3. the stack: reuse what runs, start what does not (scripts/up.sh);
//  4. the alert rules' unit tests (scripts/alert-rules-test.sh) and the AsyncAPI document linted
//     (scripts/contracts-test.sh; OpenAPI: kin-openapi in go test);
//  5. go test in every module (integration tests talk to the real Postgres, Kafka, Debezium),
//     logged in to Kafka as the test-only principal injector; the supervisor's process checks
//     and the trust boundaries (services/e2e/host_trust_test.go) are among them;
//  6. SIGKILL each component, one `make up` heals it (TestHeal in tools/supervisor, STACK_HEAL=1);
//  7. one order is one trace: make traces (Zipkin) and services/e2e TestOneOrderIsOneTrace;
//  8. the short chaos run (scripts/chaos.sh --short), then make rebuild: every projection
//     equals what its event log folds to;
//  9. docker-compose.yml, and docker-compose.cluster.yml over it, parsed by `docker compose
//     config -q` (or compose-go without the plugin), with the variables of a generated .env;
//     docker-compose.yml refused without them;
//  10. stop exactly the components this run started; a stack this run made from nothing (no
//     .stack/secrets before it) is deleted again, logs and jars kept: its PostgreSQL cluster
//     lives outside the checkout when run as root, and must not outlive it.
//
// Its last line is `N passed, M failed`: every top-level Go test, every check a script step
// prints (`ok`/`FAIL` lines), or the step itself when it prints none. CLONE_IN_TEST=0,
// HEAL_IN_TEST=0, TRACES_IN_TEST=0, CHAOS_IN_TEST=0 skip steps 2, 6, 7, 8.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"outboxsaga.dev/stack"
	"outboxsaga.dev/tools/supervisor"
)

func main() {
	root, err := filepath.Abs(envOr("ROOT", "."))
	if err != nil {
		fatal(err)
	}
	// Ctrl-C reaches the step that runs (our process group); the steps after it are skipped, and
	// we go on to stop what we started.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	r := &runner{root: root, stackDir: os.Getenv("STACK_DIR"), out: os.Stdout, interrupted: ctx.Done()}
	rc := r.run(ctx, slices.Contains(os.Args[1:], "-vet-only"))
	cancel()
	os.Exit(rc)
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m %v\n", err)
	os.Exit(1)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// runner is one make test run and its counts.
type runner struct {
	root, stackDir string
	out            io.Writer
	passed, failed int
	failedSteps    []string
	// interrupted is closed by Ctrl-C or SIGTERM: no step starts after it.
	interrupted <-chan struct{}
}

// stopped tells whether the run was interrupted, and says so once per skipped step.
func (r *runner) stopped(name string) bool {
	select {
	case <-r.interrupted:
		r.say("%s skipped: interrupted", name)
		return true
	default:
		return false
	}
}

func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.out, "\033[1m==>\033[0m %s\n", fmt.Sprintf(format, args...))
}
func (r *runner) logs() string           { return filepath.Join(r.stackDir, "logs") }
func (r *runner) rel(path string) string { return strings.TrimPrefix(path, r.root+"/") }
func (r *runner) script(name string) string {
	return filepath.Join(r.root, "scripts", name)
}

// summary is the closing line. A run that stopped before its end (failed without anything
// counted as failed) counts that as a failure.
func (r *runner) summary(ok bool) {
	if !ok && r.failed == 0 {
		r.failed = 1
	}
	fmt.Fprintf(r.out, "%d passed, %d failed\n", r.passed, r.failed)
}

func (r *runner) run(ctx context.Context, vetOnly bool) int {
	modules, err := r.modules()
	if err == nil {
		err = r.vet(modules)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m %v\n", err)
		r.summary(false)
		return 1
	}
	if vetOnly {
		return 0
	}
	if err := os.MkdirAll(r.logs(), 0o700); err != nil {
		fatal(err)
	}
	if os.Getenv("CLONE_IN_TEST") == "0" {
		r.say("clone test skipped (CLONE_IN_TEST=0)")
	} else {
		r.say("TOPOLOGY=cluster make up from a fresh clone in a 0700 directory, and the cluster's check (log: %s)", r.rel(filepath.Join(r.logs(), "clone-test.log")))
		r.step("clone-test.log", "clone-test", r.cmd(filepath.Join(r.root, "tools"), []string{"CLONE_TEST=1", "CLONE_TEST_TOPOLOGY=cluster"},
			"go", "test", "-count=1", "-timeout", "30m", "-v", "-run", "^TestFreshClone$", "./clonetest"))
	}

	sup, err := r.supervisor()
	if err != nil {
		fatal(err)
	}
	_, statErr := os.Stat(filepath.Join(r.stackDir, "secrets"))
	madeStack := os.IsNotExist(statErr)
	var started []string
	for _, n := range sup.Names() {
		if _, ok, _ := sup.Running(n); !ok {
			started = append(started, n)
		}
	}
	rc := r.middle(ctx, modules)
	if ctx.Err() != nil {
		rc = 1
	}
	// Stop exactly what this run started; delete a stack it made from nothing (even, and above
	// all, when interrupted: the cleanup's context is not the interrupted one).
	ctx = context.WithoutCancel(ctx)
	if sup, err = r.supervisor(); err != nil {
		fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.stackDir, "injector-on")); err == nil {
		if err := sup.Injector(ctx, false); err != nil {
			fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m %v\n", err)
			rc = 1
		}
	}
	if len(started) > 0 {
		r.say("stopping what this test run started: %s", strings.Join(started, " "))
		if err := sup.Stop(ctx, started...); err != nil {
			fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m %v\n", err)
			rc = 1
		}
	}
	if madeStack {
		if err := sup.Clean(ctx, true); err != nil {
			fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m %v\n", err)
			rc = 1
		}
	}
	r.summary(rc == 0)
	return rc
}

// supervisor returns the stack's supervisor, its credentials loaded.
func (r *runner) supervisor() (*supervisor.Stack, error) {
	cfg, err := supervisor.ConfigFromEnv(r.root, os.Environ())
	if err != nil {
		return nil, err
	}
	return supervisor.New(cfg), nil
}

// middle runs the steps between bringing the stack up and stopping it; it returns the exit status.
func (r *runner) middle(ctx context.Context, modules []string) int {
	upLog := filepath.Join(r.logs(), "test-up.log")
	if err := r.toLog(upLog, r.cmd(r.root, nil, r.script("up.sh"))); err != nil {
		raw, _ := os.ReadFile(upLog)
		r.out.Write(raw)
		fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m the stack did not come up\n")
		return 1
	}
	r.say("stack up (log: %s)", r.rel(upLog))

	r.say("alert rules: promtool check and unit tests, Alertmanager's configuration (log: %s)", r.rel(filepath.Join(r.logs(), "alert-rules-test.log")))
	r.step("alert-rules-test.log", "alert-rules-test", r.cmd(r.root, nil, r.script("alert-rules-test.sh")))
	r.say("contracts: AsyncAPI parser on schemas/asyncapi.yaml (log: %s)", r.rel(filepath.Join(r.logs(), "contracts-test.log")))
	r.step("contracts-test.log", "contracts-test", r.cmd(r.root, nil, r.script("contracts-test.sh")))

	// The credentials up.sh made (on a fresh checkout they did not exist when we started), and
	// the tests' Kafka login: the test-only principal.
	sup, err := r.supervisor()
	if err == nil {
		err = sup.EnsureSecrets()
	}
	if err == nil {
		err = sup.Injector(ctx, true)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m %v\n", err)
		return 1
	}
	kvs, err := sup.Credentials()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m %v\n", err)
		return 1
	}
	for _, kv := range kvs {
		os.Setenv(kv[0], kv[1])
	}
	pw, _ := os.ReadFile(filepath.Join(r.stackDir, "secrets", "kafka-injector"))
	os.Setenv("KAFKA_USERNAME", "injector")
	os.Setenv("KAFKA_PASSWORD", strings.TrimSpace(string(pw)))

	goFailed := false
	for _, m := range modules {
		if !r.goTest(m) {
			goFailed = true
		}
	}

	if os.Getenv("HEAL_IN_TEST") == "0" {
		r.say("heal test skipped (HEAL_IN_TEST=0)")
	} else {
		r.say("heal test: SIGKILL each component, then one make up (log: %s)", r.rel(filepath.Join(r.logs(), "heal-test.log")))
		r.step("heal-test.log", "heal-test", r.cmd(filepath.Join(r.root, "tools"), []string{"STACK_HEAL=1"},
			"go", "test", "-count=1", "-timeout", "30m", "-v", "-run", "^TestHeal$", "./supervisor"))
	}

	if os.Getenv("TRACES_IN_TEST") == "0" {
		r.say("trace test skipped (TRACES_IN_TEST=0)")
	} else {
		r.say("traces: the programs export to Zipkin (make traces), one order is one trace (log: %s)", r.rel(filepath.Join(r.logs(), "traces-test.log")))
		r.stepFunc("traces-test.log", "traces-test", r.traceTest)
	}

	switch {
	case os.Getenv("CHAOS_IN_TEST") == "0":
		r.say("short chaos run skipped (CHAOS_IN_TEST=0)")
	case goFailed:
		r.say("short chaos run skipped: go tests failed")
	case r.stopped("short chaos run"):
	default:
		log := filepath.Join(r.logs(), "chaos-short.log")
		r.say("short chaos run (log: %s)", r.rel(log))
		if err := r.toLog(log, r.cmd(r.root, nil, r.script("chaos.sh"), "--short")); err == nil {
			// the summary lines, if any (a passing run is a pass even when the format changes)
			for _, l := range lines(log) {
				if strings.HasPrefix(l, "checked") || strings.HasPrefix(l, "invariant") {
					fmt.Fprintf(r.out, "    %s\n", l)
				}
			}
			r.passed++
		} else {
			r.tail(log, 40)
			r.failedSteps = append(r.failedSteps, "chaos-short")
			r.failed++
		}
		// After the kills, the replays and the poison: the projections equal what their event
		// log folds to (make rebuild: one line per service, exit 1 on any difference).
		r.say("rebuild after the chaos run (log: %s)", r.rel(filepath.Join(r.logs(), "rebuild.log")))
		r.step("rebuild.log", "rebuild-after-chaos", r.cmd(r.root, nil, r.script("rebuild.sh")))
	}

	if !r.stopped("compose check") {
		r.composeCheck()
	}

	if len(r.failedSteps) == 0 {
		r.say("all tests passed")
		return 0
	}
	fmt.Fprintf(os.Stderr, "\033[31merror:\033[0m tests failed in: %s\n", strings.Join(r.failedSteps, " "))
	return 1
}

// modules lists the modules of go.work.
func (r *runner) modules() ([]string, error) {
	cmd := exec.Command("go", "work", "edit", "-json")
	cmd.Dir = r.root
	raw, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go work edit -json: %w", err)
	}
	var work struct{ Use []struct{ DiskPath string } }
	if err := json.Unmarshal(raw, &work); err != nil {
		return nil, err
	}
	var out []string
	for _, u := range work.Use {
		out = append(out, u.DiskPath)
	}
	return out, nil
}

func (r *runner) vet(modules []string) error {
	r.say("gofmt and go vet (%d modules)", len(modules))
	cmd := exec.Command("gofmt", append([]string{"-l"}, modules...)...)
	cmd.Dir = r.root
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("gofmt: %w", err)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		return fmt.Errorf("gofmt would change: %s", strings.ReplaceAll(s, "\n", " "))
	}
	for _, m := range modules {
		cmd := exec.Command("go", "vet", "./...")
		cmd.Dir = filepath.Join(r.root, m)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go vet failed in %s", m)
		}
	}
	return nil
}

// cmd is name args in dir with our environment plus env.
func (r *runner) cmd(dir string, env []string, name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Dir, c.Env = dir, append(os.Environ(), env...)
	return c
}

// toLog runs c with its output in log.
func (r *runner) toLog(log string, c *exec.Cmd) error {
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	c.Stdout, c.Stderr = f, f
	return c.Run()
}

// step runs c with its output in .stack/logs/log. On success it shows the log from its last
// progress line (a test script's summary); on failure the log's tail, and records name as failed.
func (r *runner) step(log, name string, c *exec.Cmd) {
	r.stepFunc(log, name, func(w io.Writer) error { c.Stdout, c.Stderr = w, w; return c.Run() })
}

func (r *runner) stepFunc(log, name string, run func(io.Writer) error) {
	if r.stopped(name) {
		return
	}
	path := filepath.Join(r.logs(), log)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = run(f)
		f.Close()
	}
	r.count(path, err == nil)
	if err != nil {
		r.tail(path, 40)
		r.failedSteps = append(r.failedSteps, name)
		return
	}
	var buf []string
	for _, l := range lines(path) {
		if i := strings.Index(l, "==>"); i >= 0 {
			buf = nil
			l = l[i+3:]
			if j := strings.Index(l, " "); j >= 0 {
				l = l[j+1:]
			}
		}
		buf = append(buf, "    "+l)
	}
	for _, l := range buf {
		fmt.Fprintln(r.out, l)
	}
}

var (
	ansi     = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	okLine   = regexp.MustCompile(`^ +ok +`)
	failLine = regexp.MustCompile(`^ +FAIL +`)
)

// count adds the checks of log to the counts: its `ok`/`FAIL` lines, or the step itself when
// it prints none; a failed step that printed no FAIL counts one.
func (r *runner) count(log string, ok bool) {
	good, bad := 0, 0
	for _, l := range lines(log) {
		l = ansi.ReplaceAllString(l, "")
		if okLine.MatchString(l) {
			good++
		} else if failLine.MatchString(l) {
			bad++
		}
	}
	switch {
	case good+bad == 0 && ok:
		good = 1
	case good+bad == 0 || (!ok && bad == 0):
		bad = 1
	}
	r.passed += good
	r.failed += bad
}

var shown = regexp.MustCompile(`^(ok|FAIL|---|panic:|\s+\S+_test\.go:[0-9]+:)`)

// goTest runs go test -v in module m (its log: .stack/logs/go-test-<m>.log) and shows each
// package's line and what failed; every top-level test is counted.
func (r *runner) goTest(m string) bool {
	if r.stopped("go test " + m) {
		return false
	}
	r.say("go test %s", m)
	log := filepath.Join(r.logs(), "go-test-"+filepath.Base(m)+".log")
	err := r.toLog(log, r.cmd(filepath.Join(r.root, m), nil, "go", "test", "-count=1", "-timeout", "20m", "-v", "./..."))
	pass, fail := 0, 0
	for _, l := range lines(log) {
		if shown.MatchString(l) && !strings.HasPrefix(l, "--- PASS") && !strings.HasPrefix(l, "--- SKIP") {
			fmt.Fprintf(r.out, "    %s\n", l)
		}
		if strings.HasPrefix(l, "--- PASS") {
			pass++
		} else if strings.HasPrefix(l, "--- FAIL") {
			fail++
		}
	}
	if err != nil && fail == 0 {
		fail = 1 // a build failure or a panic: no test line says so
	}
	r.passed += pass
	r.failed += fail
	if err != nil {
		r.failedSteps = append(r.failedSteps, m)
	}
	return err == nil
}

// traceTest runs scripts/traces.sh in the background (Zipkin up, the programs restarted exporting
// to it), TestOneOrderIsOneTrace against it, then TERM: Zipkin stops, the programs restart without.
func (r *runner) traceTest(w io.Writer) error {
	tl := filepath.Join(r.logs(), "traces.log")
	f, err := os.OpenFile(tl, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	viewer := r.cmd(r.root, nil, r.script("traces.sh"))
	viewer.Stdout, viewer.Stderr = f, f
	if err := viewer.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- viewer.Wait() }()
	up := func() bool {
		return slices.ContainsFunc(lines(tl), func(l string) bool { return strings.HasPrefix(l, "Traces:") })
	}
	exited := false
	for i := 0; i < 600 && !up() && !exited; i++ {
		select {
		case <-done:
			exited = true
		case <-time.After(time.Second):
		}
	}
	var testErr error
	if up() {
		zipkin := fmt.Sprintf("http://127.0.0.1:%d", stack.ZipkinPort+offset())
		c := r.cmd(filepath.Join(r.root, "services/e2e"), []string{"TRACES_ZIPKIN_URL=" + zipkin},
			"go", "test", "-count=1", "-v", "-run", "^TestOneOrderIsOneTrace$", ".")
		c.Stdout, c.Stderr = w, w
		testErr = c.Run()
	} else {
		all := lines(tl)
		fmt.Fprintln(w, strings.Join(all[max(0, len(all)-20):], "\n"))
		testErr = fmt.Errorf("the trace viewer did not come up")
	}
	if !exited {
		_ = viewer.Process.Signal(syscall.SIGTERM)
		<-done
	}
	return testErr
}

func offset() int {
	var n int
	fmt.Sscan(os.Getenv("STACK_PORT_OFFSET"), &n)
	return n
}

// composeCheck: with the variables make compose-env writes (a throwaway set, not the checkout's
// .env), docker-compose.yml must load; without them it must refuse, naming the way out: no secret
// has a default. Both run with a clean environment: ours holds this stack's credentials under
// the same names.
func (r *runner) composeCheck() {
	r.say("docker-compose.yml")
	fresh, err := supervisor.ComposeEnvFresh(r.root)
	if err != nil {
		fatal(err)
	}
	envfile, _ := os.CreateTemp("", "compose-env-")
	empty, _ := os.CreateTemp("", "compose-empty-")
	envfile.WriteString(fresh)
	envfile.Close()
	empty.Close()
	defer os.Remove(envfile.Name())
	defer os.Remove(empty.Name())
	clean := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_") {
			clean = append(clean, kv)
		}
	}
	base := filepath.Join(r.root, "docker-compose.yml")
	check := func(env string, files ...string) (string, error) {
		args := []string{"compose", "--env-file", env}
		for _, f := range files {
			args = append(args, "-f", f)
		}
		c := exec.Command("docker", append(args, "config", "-q")...)
		c.Env = clean
		out, err := c.CombinedOutput()
		return string(out), err
	}
	if v := exec.Command("docker", "compose", "version"); v.Run() == nil {
		fmt.Fprintln(r.out, "    docker compose config -q")
	} else {
		// No compose plugin here: load it with compose-go, the loader `docker compose` uses.
		bin := filepath.Join(r.root, "bin", "composecheck")
		b := exec.Command("go", "build", "-o", bin, "./cmd/composecheck")
		b.Dir, b.Stderr = filepath.Join(r.root, "tools"), os.Stderr
		if err := b.Run(); err != nil {
			fatal(fmt.Errorf("build of tools/cmd/composecheck failed: %w", err))
		}
		check = func(env string, files ...string) (string, error) {
			c := exec.Command(bin, append([]string{"-env-file", env}, files...)...)
			c.Env = clean
			out, err := c.CombinedOutput()
			return string(out), err
		}
		fmt.Fprintln(r.out, "    no 'docker compose' on this machine; checking with compose-go (tools/cmd/composecheck)")
	}
	// The cluster topology is docker-compose.cluster.yml over docker-compose.yml.
	for _, c := range []struct {
		step, ok string
		files    []string
	}{
		{"docker-compose.yml", "with the generated .env: ok", []string{base}},
		{"docker-compose.cluster.yml", "docker-compose.cluster.yml over it, with the generated .env: ok",
			[]string{base, filepath.Join(r.root, "docker-compose.cluster.yml")}},
	} {
		if out, err := check(envfile.Name(), c.files...); err == nil {
			fmt.Fprintln(r.out, "    "+c.ok)
			r.passed++
		} else {
			fmt.Fprint(r.out, out)
			r.failedSteps = append(r.failedSteps, c.step)
			r.failed++
		}
	}
	out, err := check(empty.Name(), base)
	switch {
	case err == nil:
		fmt.Fprintln(r.out, "    without a .env it loads: a secret has a default")
		r.failedSteps = append(r.failedSteps, "docker-compose-defaults")
		r.failed++
	case strings.Contains(out, "make compose-env"):
		missing := map[string]bool{}
		for _, m := range regexp.MustCompile(`required variable [A-Z_]* is missing`).FindAllString(out, -1) {
			missing[m] = true
		}
		fmt.Fprintf(r.out, "    without a .env: refused, %d secrets missing, naming make compose-env\n", len(missing))
		r.passed++
	default:
		fmt.Fprintf(r.out, "    without a .env it fails, but not naming make compose-env: %s\n", out)
		r.failedSteps = append(r.failedSteps, "docker-compose-defaults")
		r.failed++
	}
}

// tail writes the last n lines of file.
func (r *runner) tail(file string, n int) {
	all := lines(file)
	for _, l := range all[max(0, len(all)-n):] {
		fmt.Fprintln(r.out, l)
	}
}

// lines returns the lines of file (none when it cannot be read).
func lines(file string) []string {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
