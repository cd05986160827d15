// Package supervisor starts, identifies, heals and stops the processes of the native stack
// (PostgreSQL, Kafka, Kafka Connect, the Go programs, Alertmanager, Prometheus): what `make up`,
// `make down` and `make status` do through tools/cmd/stack.
//
// A component runs when the process its pid file records (.stack/pids/<name>.pid: pid, start
// time, executable) is still that process and neither a zombie nor hit by SIGKILL; a pid file
// whose process differs in any of the three is stale. A component whose pid file is lost is
// found by its command line (this stack's configuration file, data directory or binary) and
// recorded again. A start waits (bounded) for what a killed process left behind: its exit, its
// backends, its locks and its ports, and names the process in the way when it gives up.
//
// The settings (paths, ports, heaps) are scripts/lib.sh's, read from the environment it
// exports; the credentials are read from the stack's secrets (secrets.go, which makes them).
// What prepares a component is here too: its configuration files, the PostgreSQL cluster
// (pgcluster.go), the broker's logins, ACLs and topics (kafkasetup.go), the connectors
// (connectors.go).
package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"outboxsaga.dev/stack"
)

// Config is where the stack lives and what it is started with.
type Config struct {
	Root     string            // the repository
	StackDir string            // STACK_DIR, absolute
	Env      map[string]string // scripts/lib.sh's settings and the credentials
	Out      io.Writer         // progress lines
	Err      io.Writer         // the tail of a log when a start fails
	// Terminal: Out is a terminal (a progress line is rewritten in place, else printed every 5 s).
	Terminal bool
	// LeftoverTimeout bounds the wait for what a dead process left behind (60 s); PortTimeout
	// the wait for a port (10 s).
	LeftoverTimeout, PortTimeout time.Duration
}

// ConfigFromEnv reads the configuration from env (NAME=VALUE, as os.Environ returns it).
func ConfigFromEnv(root string, env []string) (Config, error) {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	cfg := Config{Root: root, StackDir: m["STACK_DIR"], Env: m, Out: os.Stdout, Err: os.Stderr,
		LeftoverTimeout: seconds(m["LEFTOVER_TIMEOUT"], 60), PortTimeout: seconds(m["PORT_TIMEOUT"], 10)}
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cfg.Terminal = true
	}
	if cfg.StackDir == "" {
		return Config{}, errors.New("STACK_DIR is not set: run through scripts/ (they source scripts/lib.sh)")
	}
	for _, k := range []string{"PG_DATA", "PG_DIR", "PG_LOG", "PG_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "CONNECT_PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT"} {
		if m[k] == "" {
			return Config{}, fmt.Errorf("%s is not set: run through scripts/ (scripts/lib.sh's supervise)", k)
		}
	}
	if m["TOPOLOGY"] == "cluster" { // the members scripts/topology.sh exports
		if _, err := stack.ParseKafkaNodes(m["KAFKA_NODES"]); err != nil {
			return Config{}, err
		}
		if _, err := stack.ParseConnectWorkers(m["CONNECT_WORKERS"]); err != nil {
			return Config{}, err
		}
	}
	return cfg, nil
}

func seconds(s string, def int) time.Duration {
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return time.Duration(def) * time.Second
}

func (c Config) get(k string) string { return c.Env[k] }
func (c Config) port(k string) int   { n, _ := strconv.Atoi(c.Env[k]); return n }

// Stack is the native stack's components and what supervises them.
type Stack struct {
	cfg   Config
	comps []*component
	out   *output
	// warnedRunUser: the warning that the stack's OS user cannot read the checkout was given.
	warnedRunUser bool
}

// New returns the supervisor of the stack cfg describes.
func New(cfg Config) *Stack {
	if cfg.Env == nil {
		cfg.Env = map[string]string{}
	}
	s := &Stack{cfg: cfg, out: &output{w: cfg.Out, terminal: cfg.Terminal}}
	_ = s.loadCredentials() // none yet on a fresh checkout: EnsureSecrets makes them
	s.comps = s.newComps()
	return s
}

// newComps builds the components of the topology (TOPOLOGY=cluster: tools/supervisor/cluster.go).
func (s *Stack) newComps() []*component {
	if s.clusterMode() {
		return s.clusterComponents()
	}
	return s.components()
}

// Names lists the components in start order (they stop in the reverse order).
func (s *Stack) Names() []string {
	out := make([]string, len(s.comps))
	for i, c := range s.comps {
		out[i] = c.name
	}
	return out
}

func (s *Stack) comp(name string) (*component, error) {
	for _, c := range s.comps {
		if c.name == name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("unknown component %s (components: %s)", name, strings.Join(s.Names(), " "))
}

func (s *Stack) pidFile(name string) string {
	return filepath.Join(s.cfg.StackDir, "pids", name+".pid")
}
func (s *Stack) logFile(name string) string {
	if name == "postgres" {
		return s.cfg.get("PG_LOG")
	}
	return filepath.Join(s.cfg.StackDir, "logs", name+".log")
}

// Find returns every live process that is component name of this stack, whatever the pid
// files say (normally one; none when it is down).
func (s *Stack) Find(name string) ([]int, error) {
	c, err := s.comp(name)
	if err != nil {
		return nil, err
	}
	return s.find(c), nil
}

func (s *Stack) find(c *component) []int {
	var out []int
	self := os.Getpid()
	for _, pid := range Pids() {
		if pid == self {
			continue
		}
		args := Args(pid)
		if len(args) > 0 && c.is(pid, args) && Live(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// Running returns the process of component name when it runs: the one its pid file records
// if that is still the same process, else (the file lost or stale) the one found by its
// command line, which is then recorded.
func (s *Stack) Running(name string) (Identity, bool, error) {
	c, err := s.comp(name)
	if err != nil {
		return Identity{}, false, err
	}
	id, ok := s.running(c)
	return id, ok, nil
}

func (s *Stack) running(c *component) (Identity, bool) {
	if id, err := ReadPidFile(s.pidFile(c.name)); err == nil && id.Live() {
		return id, true
	}
	for _, pid := range s.find(c) {
		id, err := ReadIdentity(pid)
		if err != nil {
			continue
		}
		s.out.line("    %s runs as pid %d, which its pid file did not say: recording it", c.name, pid)
		if err := WritePidFile(s.pidFile(c.name), id); err != nil {
			s.out.line("    %v", err)
		}
		return id, true
	}
	return Identity{}, false
}

// Kill sends SIGKILL to the running component name and returns at once, as `kill -9` does.
func (s *Stack) Kill(name string) (Identity, error) {
	id, ok, err := s.Running(name)
	if err != nil {
		return Identity{}, err
	}
	if !ok {
		return Identity{}, fmt.Errorf("kill %s: it does not run", name)
	}
	return id, signal(id.Pid, syscall.SIGKILL)
}

// spec is how a component's process is started.
type spec struct {
	path string
	args []string
	env  []string
	// user: the OS user it runs as ("" when not root, or when the stack runs as root).
	user string
	// log: its standard output and error (appended); noFollow: opened with O_NOFOLLOW (a
	// directory of another user's).
	log      string
	noFollow bool
	dir      string
}

// credential returns who a process of user runs as: its uid, the group of RUN_GROUP (the
// stack's OS user) or its primary group and supplementary groups (PostgreSQL's user, as
// runuser does).
func (s *Stack) credential(name string) (*syscall.Credential, error) {
	if name == "" || os.Getuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("OS user %s: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	if name == s.cfg.get("RUN_USER") && s.cfg.get("RUN_GROUP") != "" {
		g, err := user.LookupGroup(s.cfg.get("RUN_GROUP"))
		if err != nil {
			return nil, fmt.Errorf("OS group %s: %w", s.cfg.get("RUN_GROUP"), err)
		}
		gid, _ = strconv.Atoi(g.Gid)
		cred.Gid = uint32(gid)
		return cred, nil
	}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil && n != gid {
			cred.Groups = append(cred.Groups, uint32(n))
		}
	}
	return cred, nil
}

// command returns sp as a command of its own session (it outlives us and our terminal),
// run as its user, its output appended to its log.
func (s *Stack) command(sp spec) (*exec.Cmd, *os.File, error) {
	flags := os.O_WRONLY | os.O_APPEND | os.O_CREATE
	if sp.noFollow {
		flags |= syscall.O_NOFOLLOW
	}
	if err := os.MkdirAll(filepath.Dir(sp.log), 0o700); err != nil && !sp.noFollow {
		return nil, nil, fmt.Errorf("log directory: %w", err)
	}
	logf, err := os.OpenFile(sp.log, flags|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("log: %w", err)
	}
	if sp.noFollow {
		// In another user's directory: a FIFO, a device or a hard link to someone else's file
		// is not a log.
		var st syscall.Stat_t
		if err := syscall.Fstat(int(logf.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Nlink != 1 {
			logf.Close()
			return nil, nil, fmt.Errorf("log %s is not a plain file of its own", sp.log)
		}
	}
	cred, err := s.credential(sp.user)
	if err != nil {
		logf.Close()
		return nil, nil, err
	}
	cmd := exec.Command(sp.path, sp.args...)
	cmd.Env = append([]string{}, sp.env...) // exactly these: not ours, which holds every secret
	cmd.Dir = sp.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: cred}
	return cmd, logf, nil
}

// spawn starts sp in the background and records its identity in name's pid file.
func (s *Stack) spawn(name string, sp spec) (Identity, error) {
	cmd, logf, err := s.command(sp)
	if err != nil {
		return Identity{}, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	if err := cmd.Start(); err != nil {
		return Identity{}, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }() // reaped at once when it exits while we run
	// cmd.Start returns once the program has been executed: its identity is final.
	id, err := ReadIdentity(cmd.Process.Pid)
	if err != nil {
		return Identity{}, fmt.Errorf("%s exited as it started (log: %s): %w", name, sp.log, err)
	}
	if err := WritePidFile(s.pidFile(name), id); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// await calls ok every half second until it returns true (true) or timeout passes (false),
// showing "waiting for what ... Ns" meanwhile; silent when ok holds at once.
func (s *Stack) await(what string, timeout time.Duration, ok func() bool) bool {
	t0 := time.Now()
	waited := false
	for !ok() {
		if time.Since(t0) >= timeout {
			if waited {
				s.out.end("gave up waiting for %s after %s", what, secs(timeout))
			}
			return false
		}
		waited = true
		s.out.progress("waiting for %s ... %ss", what, since(t0))
		time.Sleep(500 * time.Millisecond)
	}
	if waited {
		s.out.end("waited %ss for %s", since(t0), what)
	}
	return true
}

// tail writes the last n lines of file to the error output.
func (s *Stack) tail(file string, n int) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	fmt.Fprintf(s.cfg.Err, "---- last lines of %s ----\n%s\n", file, strings.Join(lines, "\n"))
}

func since(t0 time.Time) string   { return fmt.Sprintf("%.1f", time.Since(t0).Seconds()) }
func secs(d time.Duration) string { return strconv.Itoa(int(d.Seconds())) }

// output writes progress lines as scripts/lib.sh's say, progress and progress_end do.
type output struct {
	w        io.Writer
	terminal bool
	last     time.Time
}

func (o *output) say(format string, args ...any) {
	fmt.Fprintf(o.w, "\033[1m==>\033[0m %s\n", fmt.Sprintf(format, args...))
}
func (o *output) line(format string, args ...any) { fmt.Fprintf(o.w, format+"\n", args...) }

// progress rewrites the status line on a terminal; into a log it writes a line every 5 s.
func (o *output) progress(format string, args ...any) {
	if o.terminal {
		fmt.Fprintf(o.w, "\r\033[K    %s", fmt.Sprintf(format, args...))
		return
	}
	if time.Since(o.last) < 5*time.Second {
		return
	}
	o.last = time.Now()
	fmt.Fprintf(o.w, "    %s\n", fmt.Sprintf(format, args...))
}

func (o *output) end(format string, args ...any) {
	o.last = time.Time{}
	if o.terminal {
		fmt.Fprintf(o.w, "\r\033[K    %s\n", fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(o.w, "    %s\n", fmt.Sprintf(format, args...))
}
