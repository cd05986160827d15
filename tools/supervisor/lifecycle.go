package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"outboxsaga.dev/stack"
)

// component is one process of the stack and how it is supervised.
type component struct {
	name string
	// is reports whether the live process pid, with these arguments, is this component of this
	// stack (how a process is found when its pid file is lost).
	is func(pid int, args []string) bool
	// ports must be free before a start (after a stop, they are waited for); lock (a file) too.
	ports []port
	lock  string
	// before runs at every start, whether the component runs or not; changed says that its
	// configuration changed (then whenUp may reload it).
	before func(ctx context.Context) (changed bool, err error)
	// whenUp runs when the component already runs (reload, setup of what changed).
	whenUp func(ctx context.Context, id Identity, changed bool) error
	// leftovers waits for what a dead process of this component left behind (beyond its
	// lock and ports).
	leftovers func(ctx context.Context) error
	// prepare runs just before the process is started (configuration, migrations).
	prepare func(ctx context.Context) error
	spec    func() (spec, error)
	ready   func(ctx context.Context) error
	// readyTimeout bounds the wait for ready after a start.
	readyTimeout time.Duration
	// after runs once it is ready, or when it ran already (started tells which).
	after func(ctx context.Context, started bool) error
	// where: "on host:port", for messages; title: its name in "starting <title> on ...".
	where, title string
	// stop: stopSig, up to grace, then forceSig.
	stopSig, forceSig syscall.Signal
	grace             time.Duration
}

// port is a port a component listens on and the setting that moves it.
type port struct {
	n       int
	setting string
}

// Start starts the components named (default: all, in order) that do not run, and heals
// what a crash left behind. A component that runs is left alone.
func (s *Stack) Start(ctx context.Context, names ...string) error {
	if err := s.runUserReady(); err != nil {
		return err
	}
	comps, err := s.pick(names)
	if err != nil {
		return err
	}
	var progs []string
	for _, c := range comps {
		if isProgram(c.name) {
			progs = append(progs, c.name)
		}
	}
	for _, c := range comps {
		if len(progs) > 0 && c.name == progs[0] {
			// Builds them (SERVICES_NO_BUILD=1: only the missing ones), and what a program
			// needs of its own (the webhook sink's directory).
			if err := s.preparePrograms(ctx, progs); err != nil {
				return err
			}
		}
		if err := s.start(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) pick(names []string) ([]*component, error) {
	if len(names) == 0 {
		return s.comps, nil
	}
	var out []*component
	for _, c := range s.comps { // in start order, whatever the order asked
		for _, n := range names {
			if n == c.name {
				out = append(out, c)
			}
		}
	}
	for _, n := range names {
		if _, err := s.comp(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Stack) start(ctx context.Context, c *component) error {
	changed := false
	if c.before != nil {
		var err error
		if changed, err = c.before(ctx); err != nil {
			return err
		}
	}
	if id, ok := s.running(c); ok {
		up, err := s.answers(ctx, c, id)
		if err != nil {
			return err
		}
		if up {
			if c.whenUp != nil {
				if err := c.whenUp(ctx, id, changed); err != nil {
					return err
				}
			}
			if id2, ok := s.running(c); ok && id2 == id { // whenUp may have restarted it
				s.out.line("    %s already running %s", c.name, c.where)
				if c.after != nil {
					return c.after(ctx, false)
				}
				return nil
			}
		}
	}
	if err := s.awaitFree(ctx, c); err != nil {
		return err
	}
	if c.prepare != nil {
		if err := c.prepare(ctx); err != nil {
			return err
		}
	}
	sp, err := c.spec()
	if err != nil {
		return err
	}
	s.out.say("starting %s %s", c.title, c.where)
	id, err := s.spawn(c.name, sp)
	if err != nil {
		return err
	}
	if err := s.waitReady(ctx, c, id); err != nil {
		return err
	}
	if c.after != nil {
		return c.after(ctx, true)
	}
	return nil
}

// answers: a process that runs but does not answer yet (starting, recovering) gets
// LeftoverTimeout to answer (true) or to exit (false); an error when it does neither.
func (s *Stack) answers(ctx context.Context, c *component, id Identity) (bool, error) {
	if c.ready(ctx) == nil {
		return true, nil
	}
	answered := false
	ok := s.await(fmt.Sprintf("%s (pid %d) to answer (or exit)", c.name, id.Pid), s.cfg.LeftoverTimeout, func() bool {
		if !id.Live() {
			return true
		}
		answered = c.ready(ctx) == nil
		return answered
	})
	if !ok {
		return false, fmt.Errorf("%s runs as pid %d but does not answer after %ss (log: %s); stop it with: scripts/down.sh %s",
			c.name, id.Pid, secs(s.cfg.LeftoverTimeout), s.logFile(c.name), c.name)
	}
	return answered && id.Live(), nil
}

// waitReady waits for a process just started to answer; it fails with the tail of its log
// when the process exits or readyTimeout passes.
func (s *Stack) waitReady(ctx context.Context, c *component, id Identity) error {
	t0 := time.Now()
	for c.ready(ctx) != nil {
		log := s.logFile(c.name)
		if !id.Live() {
			s.out.end("%s exited while starting", c.name)
			s.tail(log, 40)
			return fmt.Errorf("%s exited while starting (log: %s)", c.name, log)
		}
		if time.Since(t0) >= c.readyTimeout {
			s.out.end("%s not ready after %ss", c.name, secs(c.readyTimeout))
			s.tail(log, 40)
			return fmt.Errorf("%s not ready after %ss (log: %s)", c.name, secs(c.readyTimeout), log)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.out.progress("waiting for %s ... %ss", c.name, since(t0))
		time.Sleep(500 * time.Millisecond)
	}
	s.out.end("%s ready after %ss", c.name, since(t0))
	return nil
}

// awaitFree waits until what c's last run left behind is gone: its leftover processes, the
// lock on its data and its ports (before a start, and after a stop).
func (s *Stack) awaitFree(ctx context.Context, c *component) error {
	if c.leftovers != nil {
		if err := c.leftovers(ctx); err != nil {
			return err
		}
	}
	if c.lock != "" {
		if err := s.awaitLock(c); err != nil {
			return err
		}
	}
	for _, p := range c.ports {
		if err := s.awaitPort(c, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) awaitPort(c *component, p port) error {
	if !PortInUse(p.n) {
		return nil
	}
	holder := func() string {
		if pid := PortHolder(p.n); pid > 0 {
			return Describe(pid)
		}
		return "an unknown process"
	}
	if s.await(fmt.Sprintf("port %d (held by %s) to be free", p.n, holder()), s.cfg.PortTimeout, func() bool { return !PortInUse(p.n) }) {
		return nil
	}
	return fmt.Errorf("%s cannot start: port %d is in use by %s. Stop that program, or move ours: %s=<port> (or STACK_PORT_OFFSET=<n> for every port)",
		c.name, p.n, holder(), p.setting)
}

// awaitLock waits (bounded) until no process holds a lock on the component's lock file.
// It never removes the lock: when it gives up it names the process that holds it.
func (s *Stack) awaitLock(c *component) error {
	holders := LockHolders(c.lock)
	if len(holders) == 0 {
		return nil
	}
	rel := strings.TrimPrefix(c.lock, s.cfg.Root+"/")
	if s.await(fmt.Sprintf("the lock on %s (held by %s) to be released", rel, Describe(holders[0])), s.cfg.LeftoverTimeout,
		func() bool { return len(LockHolders(c.lock)) == 0 }) {
		return nil
	}
	holders = LockHolders(c.lock)
	if len(holders) == 0 {
		return nil
	}
	return fmt.Errorf("%s cannot start: %s is locked by %s, which still runs. Stop it (if it is ours: scripts/down.sh %s), then run make up again",
		c.name, c.lock, Describe(holders[0]), c.name)
}

// Stop stops the components named (default: all), in the reverse start order.
func (s *Stack) Stop(ctx context.Context, names ...string) error {
	comps, err := s.pick(names)
	if err != nil {
		return err
	}
	for i := len(comps) - 1; i >= 0; i-- {
		if err := s.stop(ctx, comps[i]); err != nil {
			return err
		}
	}
	return nil
}

// stop is the one stop routine: stopSig to the component (only ever a process that is it: a
// stale pid file is just removed), up to grace for it to exit, then forceSig, and its ports
// and lock waited for.
func (s *Stack) stop(ctx context.Context, c *component) error {
	id, ok := s.running(c)
	if ok {
		s.out.say("stopping %s (pid %d)", c.name, id.Pid)
		if err := signal(id.Pid, c.stopSig); err != nil {
			return err
		}
		gone := func() bool { return !id.Live() }
		if !s.await(fmt.Sprintf("%s (pid %d) to exit", c.name, id.Pid), c.grace, gone) {
			s.out.say("%s (pid %d) still runs after %ss: sending %s", c.name, id.Pid, secs(c.grace), sigName(c.forceSig))
			if err := signal(id.Pid, c.forceSig); err != nil {
				return err
			}
			if !s.await(fmt.Sprintf("%s (pid %d) to exit", c.name, id.Pid), 30*time.Second, gone) {
				return fmt.Errorf("%s did not exit after %s: %s", c.name, sigName(c.forceSig), Describe(id.Pid))
			}
		}
	}
	if err := os.Remove(s.pidFile(c.name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("stop %s: %w", c.name, err)
	}
	if !ok {
		return nil
	}
	if err := s.awaitFree(ctx, c); err != nil {
		return err
	}
	return nil
}

func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return sig.String()
}

// Up brings the whole stack up: the infrastructure and the Go programs, the connectors
// (RegisterConnectors), the monitoring; then waits for every saga service's /readyz.
func (s *Stack) Up(ctx context.Context) error {
	var first, monitoring []string
	for _, c := range s.comps {
		if isMonitoring(c.name) {
			monitoring = append(monitoring, c.name)
		} else {
			first = append(first, c.name)
		}
	}
	if err := s.Start(ctx, first...); err != nil {
		return err
	}
	s.out.say("registering connectors")
	if err := s.RegisterConnectors(ctx); err != nil {
		return err
	}
	// Prometheus scrapes the services; Alertmanager sends alerts to the notification service's relay.
	if err := s.Start(ctx, monitoring...); err != nil {
		return err
	}
	s.out.say("waiting for the services to be ready (/readyz)")
	for _, p := range stack.SagaServices() {
		n := p.Name
		c, _ := s.comp(n)
		url := "http://" + s.addr(n) + "/readyz"
		id, _ := s.running(c)
		rc := *c
		rc.ready = func(ctx context.Context) error { return httpOK(ctx, url, 2*time.Second, nil) }
		rc.readyTimeout = 60 * time.Second
		if err := s.waitReady(ctx, &rc, id); err != nil {
			return err
		}
		var body struct {
			Status   string          `json:"status"`
			Degraded json.RawMessage `json:"degraded"`
		}
		if raw, err := httpGet(ctx, url, 5*time.Second, nil); err == nil && json.Unmarshal(raw, &body) == nil && body.Status != "ready" {
			fmt.Fprintf(s.cfg.Out, "\033[1;31m    %s is %s: %s\033[0m\n", n, body.Status, body.Degraded)
		}
	}
	if s.clusterMode() {
		s.sayMembers(ctx)
	}
	return nil
}

// sayMembers says what the cluster is made of: its Kafka nodes and which connectors each Connect
// worker runs.
func (s *Stack) sayMembers(ctx context.Context) {
	var nodes []string
	for _, n := range s.kafkaNodes() {
		nodes = append(nodes, n.Name()+" "+s.brokerAddr(n))
	}
	s.out.say("the cluster: %d Kafka nodes (%s)", len(nodes), strings.Join(nodes, ", "))
	st, err := s.connectREST().Statuses(ctx)
	if err != nil {
		fmt.Fprintf(s.cfg.Out, "    Connect's statuses: %v\n", err)
		return
	}
	byWorker := map[string][]string{}
	for name, c := range st {
		byWorker[c.Connector.WorkerID] = append(byWorker[c.Connector.WorkerID], name)
	}
	workers := s.connectWorkers()
	names := slices.Sorted(maps.Keys(workers))
	for _, w := range names {
		id := fmt.Sprintf("127.0.0.1:%d", workers[w]) // rest.advertised.host.name:port (configureConnect)
		runs := byWorker[id]
		slices.Sort(runs)
		fmt.Fprintf(s.cfg.Out, "    Connect worker %s (%s): %d connectors: %s\n", w, id, len(runs), strings.Join(runs, " "))
	}
}

// Status writes one line per component: its pid, up or down, its RSS; a stale pid file says
// what its pid is now. A component that runs without a pid file naming it is recorded.
func (s *Stack) Status(w io.Writer) {
	fmt.Fprintf(w, "  %-13s %-8s %-8s %s\n", "NAME", "PID", "STATE", "RSS")
	for _, c := range s.comps {
		if id, ok := s.running(c); ok {
			fmt.Fprintf(w, "  %-13s %-8d %-8s %s\n", c.name, id.Pid, "up", rss(id.Pid))
		} else if id, err := ReadPidFile(s.pidFile(c.name)); err == nil {
			fmt.Fprintf(w, "  %-13s %-8s %-8s (stale pid file: %s)\n", c.name, "-", "down", Describe(id.Pid))
		} else {
			fmt.Fprintf(w, "  %-13s %-8s %-8s\n", c.name, "-", "down")
		}
	}
}

// rss returns the resident set of pid, "N MiB".
func rss(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return fmt.Sprintf("%.0f MiB", float64(kb)/1024)
		}
	}
	return "?"
}

// httpGet returns the body of a 2xx answer to GET url.
func httpGet(ctx context.Context, url string, timeout time.Duration, auth *[2]string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		req.SetBasicAuth(auth[0], auth[1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		return body, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return body, nil
}

func httpOK(ctx context.Context, url string, timeout time.Duration, auth *[2]string) error {
	_, err := httpGet(ctx, url, timeout, auth)
	return err
}
