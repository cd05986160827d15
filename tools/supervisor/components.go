package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"outboxsaga.dev/stack"
)

// The components, in start order (they stop in the reverse order): the infrastructure, the Go
// programs of the stack table (outboxsaga.dev/stack: the simulators before the services that
// call them), then the monitoring, which watches the programs.
var (
	infrastructure = []string{"postgres", "kafka", "connect"}
	monitoring     = []string{"alertmanager", "prometheus"}
)

// Components lists every component of the stack in start order.
func Components() []string {
	out := slices.Clone(infrastructure)
	for _, p := range stack.Programs() {
		out = append(out, p.Name)
	}
	return append(out, monitoring...)
}

func isProgram(name string) bool    { _, ok := stack.Lookup(name); return ok }
func isMonitoring(name string) bool { return slices.Contains(monitoring, name) }
func isSaga(name string) bool       { p, ok := stack.Lookup(name); return ok && p.Kind == stack.Saga }

// upper is a name as the prefix of its variables: ORDER, GATEWAYSIM.
func upper(name string) string { return strings.ToUpper(strings.ReplaceAll(name, "-", "_")) }

// addrVar is the variable that holds a Go program's listen address (host:port).
func addrVar(name string) string { return stack.Service(name).AddrVar }

func (s *Stack) addr(name string) string { return s.cfg.get(addrVar(name)) }

// argsHave reports whether args hold the consecutive arguments want.
func argsHave(args []string, want ...string) bool {
	for i := 0; i+len(want) <= len(args); i++ {
		if slices.Equal(args[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

func (s *Stack) components() []*component {
	var out []*component
	for _, n := range Components() {
		switch {
		case n == "postgres":
			out = append(out, s.postgres())
		case n == "kafka":
			out = append(out, s.kafka())
		case n == "connect":
			out = append(out, s.connect())
		case isProgram(n):
			out = append(out, s.program(n))
		case isMonitoring(n):
			out = append(out, s.monitor(n))
		}
	}
	return out
}

// ---- PostgreSQL ----

func (s *Stack) postgres() *component {
	data, dir := s.cfg.get("PG_DATA"), s.cfg.get("PG_DIR")
	host, pgPort := s.cfg.get("PG_HOST"), s.cfg.port("PG_PORT")
	c := &component{
		name: "postgres", title: "PostgreSQL", where: fmt.Sprintf("on %s:%d", host, pgPort),
		is:    func(_ int, args []string) bool { return argsHave(args, "-D", data) }, // the postmaster
		ports: []port{{pgPort, "PG_PORT"}},
		// SIGINT is PostgreSQL's fast shutdown; SIGQUIT, if it takes longer than a minute, its immediate one.
		stopSig: syscall.SIGINT, forceSig: syscall.SIGQUIT, grace: 60 * time.Second,
		readyTimeout: 30 * time.Second,
		ready: func(ctx context.Context) error {
			return exec.CommandContext(ctx, "pg_isready", "-q", "-h", host, "-p", strconv.Itoa(pgPort)).Run()
		},
	}
	c.before = func(ctx context.Context) (bool, error) {
		if err := s.checkHome(); err != nil {
			return false, err
		}
		creating := filepath.Join(dir, "creating")
		if _, err := os.Stat(creating); err == nil {
			// Its creation was interrupted (see pgCreate): nothing in it is worth keeping.
			s.out.say("the cluster in %s was never completely created (an earlier start stopped during its creation): creating it again", data)
			if err := s.stop(ctx, c); err != nil {
				return false, err
			}
			if !s.await("the processes of the unfinished cluster to exit", s.cfg.LeftoverTimeout, func() bool { return len(CwdPids(data)) == 0 }) {
				return false, fmt.Errorf("processes of the unfinished cluster still run: %v", CwdPids(data))
			}
			return false, s.pgCreate(ctx)
		}
		if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
			return false, s.pgCreate(ctx)
		}
		return false, nil
	}
	c.leftovers = func(context.Context) error { return s.pgLeftovers() }
	c.spec = func() (spec, error) {
		bin, err := pgBin("postgres")
		if err != nil {
			return spec{}, err
		}
		sp := spec{path: bin, args: []string{"-D", data}, dir: "/", log: s.logFile("postgres"),
			env: []string{"PATH=" + s.cfg.get("PATH"), "LANG=C.UTF-8"}}
		if os.Getuid() == 0 {
			sp.user = s.cfg.get("PG_OS_USER")
			sp.noFollow = true // its directory is that user's: a symlink there must lead root nowhere
		}
		return sp, nil
	}
	// The service databases and their roles (infra/postgres/init.sh; skipped when nothing changed).
	c.after = func(ctx context.Context, _ bool) error { return s.pgInit(ctx) }
	return c
}

// checkHome: the cluster's directory is keyed by the stack's path. If .stack/pg points
// elsewhere, the checkout (or its .stack) was moved or copied: its Kafka data belongs to that
// other cluster.
func (s *Stack) checkHome() error {
	dir, link := s.cfg.get("PG_DIR"), filepath.Join(s.cfg.StackDir, "pg")
	if dir == link {
		return nil
	}
	linked, err := os.Readlink(link)
	if err != nil || linked == dir {
		return nil
	}
	owner, _ := os.ReadFile(filepath.Join(linked, "stack"))
	if len(owner) == 0 {
		owner = []byte("another path")
	}
	return fmt.Errorf("this stack's PostgreSQL cluster is %s (made for %s), but a stack at %s keeps its cluster in %s: the checkout or its .stack was moved or copied. Move it back, or start this one over: make clean && make up",
		linked, strings.TrimSpace(string(owner)), s.cfg.StackDir, dir)
}

// pgLeftovers waits for what a killed postmaster leaves behind. Its backends live on for a
// moment (each exits when it notices), and postmaster.pid (and the socket's lock file) still
// name it. PostgreSQL refuses to start while a process with that pid exists, even a zombie not
// yet reaped by its parent, or while old backends still use the shared memory. So: wait until
// no process of this cluster runs, then until the killed postmaster's pid has disappeared.
func (s *Stack) pgLeftovers() error {
	data := s.cfg.get("PG_DATA")
	gone := func() bool { return len(CwdPids(data)) == 0 }
	if !s.await("the processes of the stopped PostgreSQL to exit", s.cfg.LeftoverTimeout, gone) {
		var still []string
		for _, pid := range CwdPids(data) {
			still = append(still, "still running: "+Describe(pid))
		}
		return fmt.Errorf("PostgreSQL cannot start: processes of its earlier server still run in %s (%s). They exit within seconds of their postmaster's death unless stuck; stop them (kill <pid>) and run make up again",
			data, strings.Join(still, "; "))
	}
	lock := filepath.Join(data, "postmaster.pid")
	raw, err := os.ReadFile(lock)
	if err != nil {
		return nil
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
	if pid <= 0 || !Exists(pid) {
		return nil // gone: PostgreSQL replaces the lock itself
	}
	// No process of the cluster exists any more (checked above, the dying included), so the pid
	// is the exited postmaster as a zombie, or the kernel has given it to another process.
	s.await(fmt.Sprintf("pid %d, the exited postmaster, to be reaped", pid), 10*time.Second, func() bool { return State(pid) != 'Z' })
	if !Exists(pid) {
		return nil
	}
	// Still there: a zombie nobody reaps, or another process. Neither holds the lock: it is stale.
	s.out.say("removing the stale %s: it names %s, which is not a process of this cluster", strings.TrimPrefix(lock, s.cfg.Root+"/"), Describe(pid))
	sock := filepath.Join(s.cfg.get("PG_DIR"), "run", fmt.Sprintf(".s.PGSQL.%d.lock", s.cfg.port("PG_PORT")))
	for _, f := range []string{lock, sock} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove the stale %s: %w", f, err)
		}
	}
	return nil
}

// pgBin is the path of a PostgreSQL server binary (Debian keeps them out of PATH).
func pgBin(name string) (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && fi.Mode()&0o111 != 0 {
			return filepath.Join(d, name), nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL server binary %s not found (run scripts/install.sh)", name)
	}
	return p, nil
}

// ---- Kafka and Kafka Connect ----

// javaSpec is a JVM of the stack: the resolved jars, log4j2's configuration, an environment
// of env alone.
func (s *Stack) javaSpec(name, heap string, env []string, args ...string) (spec, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return spec{}, fmt.Errorf("java not found (run scripts/install.sh)")
	}
	all := slices.Concat(strings.Fields(heap), []string{"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"}, args)
	return spec{path: java, args: all, env: env, user: s.cfg.get("RUN_USER"), log: s.logFile(name)}, nil
}

func (s *Stack) classpath() string { return filepath.Join(s.cfg.StackDir, "lib", "kafka", "*") }

func (s *Stack) kafka() *component {
	conf := s.cfg.get("KAFKA_CONF")
	bootstrap := fmt.Sprintf("%s:%d", s.cfg.get("KAFKA_HOST"), s.cfg.port("KAFKA_PORT"))
	return &component{
		name: "kafka", title: "Kafka", where: "on " + bootstrap,
		is:    func(_ int, args []string) bool { return argsHave(args, "kafka.Kafka", conf) },
		ports: []port{{s.cfg.port("KAFKA_PORT"), "KAFKA_PORT"}, {s.cfg.port("KAFKA_CONTROLLER_PORT"), "KAFKA_CONTROLLER_PORT"}},
		// After a crash: the broker's lock on its log directory (released when its process has exited).
		lock:    filepath.Join(s.cfg.StackDir, "kafka", "data", ".lock"),
		stopSig: syscall.SIGTERM, forceSig: syscall.SIGKILL, grace: 30 * time.Second,
		readyTimeout: 90 * time.Second,
		// the broker answers a metadata request (of the viewer, whose PLAIN login needs no setup)
		ready: func(ctx context.Context) error {
			return exec.CommandContext(ctx, "kcat", "-F", s.cfg.get("KCAT_CONF"), "-L", "-m", "2").Run()
		},
		// its configuration (with the admin's password), storage formatted on first use
		prepare: s.configureKafka,
		spec: func() (spec, error) {
			// An empty environment: the broker's secrets are in its configuration file (0600).
			return s.javaSpec("kafka", s.cfg.get("KAFKA_HEAP"), []string{"LANG=C.UTF-8"},
				"-Dlog4j2.configurationFile="+filepath.Join(s.cfg.Root, "infra/kafka/log4j2.properties"),
				"-cp", s.classpath(), "kafka.Kafka", conf)
		},
		// its logins, ACLs and topics: at every start, and on a running broker when they changed
		after: func(ctx context.Context, started bool) error {
			return s.setupKafka(ctx, !started)
		},
	}
}

func (s *Stack) connect() *component {
	conf := s.cfg.get("CONNECT_CONF")
	url := fmt.Sprintf("http://127.0.0.1:%d", s.cfg.port("CONNECT_PORT"))
	auth := &[2]string{s.cfg.get("CONNECT_REST_USER"), s.cfg.get("CONNECT_REST_PASSWORD")}
	c := &component{
		name: "connect", title: "Kafka Connect", where: "on " + url,
		is: func(_ int, args []string) bool {
			return argsHave(args, "org.apache.kafka.connect.cli.ConnectDistributed", conf)
		},
		ports:   []port{{s.cfg.port("CONNECT_PORT"), "CONNECT_PORT"}},
		stopSig: syscall.SIGTERM, forceSig: syscall.SIGKILL, grace: 30 * time.Second,
		readyTimeout: 120 * time.Second,
		// its REST API lists the Debezium plugin
		ready: func(ctx context.Context) error {
			body, err := httpGet(ctx, url+"/connector-plugins", 5*time.Second, auth)
			if err == nil && !strings.Contains(string(body), "io.debezium.connector.postgresql.PostgresConnector") {
				err = fmt.Errorf("no Debezium plugin")
			}
			return err
		},
		// its configuration, its login and the REST API's users' file
		prepare: func(context.Context) error { return s.configureConnect() },
		spec: func() (spec, error) {
			// An empty environment plus what the connector JSON reads through the env config
			// provider (whose allowlist takes only these names): the database's address, each
			// connector's database password and Kafka password. Not the superuser's, the
			// services', the REST API's or its own Kafka password (in its configuration file).
			env := []string{"PG_HOST=" + s.cfg.get("PG_HOST"), "PG_PORT=" + s.cfg.get("PG_PORT")}
			for _, svc := range stack.SagaServices() {
				for _, v := range []string{"DEBEZIUM_" + svc.Env() + "_PG_PASSWORD", "CONNECT_" + svc.Env() + "_KAFKA_PASSWORD"} {
					env = append(env, v+"="+s.cfg.get(v))
				}
			}
			env = append(env, "LANG=C.UTF-8")
			return s.javaSpec("connect", s.cfg.get("CONNECT_HEAP"), env,
				"-Djava.security.auth.login.config="+filepath.Join(s.cfg.StackDir, "connect", "rest-jaas.conf"),
				"-Dlog4j2.configurationFile="+filepath.Join(s.cfg.Root, "infra/kafka/log4j2.properties"),
				"-cp", s.classpath(), "org.apache.kafka.connect.cli.ConnectDistributed", conf)
		},
	}
	c.whenUp = func(ctx context.Context, _ Identity, _ bool) error {
		if httpOK(ctx, url+"/connectors", 5*time.Second, nil) != nil {
			return nil
		}
		s.out.say("Kafka Connect on %s takes requests without credentials (an earlier version started it): restarting it", url)
		return s.stop(ctx, c)
	}
	return c
}

// ---- the Go programs ----

func (s *Stack) program(name string) *component {
	bin := filepath.Join(s.cfg.Root, "bin", name)
	addr := s.addr(name)
	_, portStr, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(portStr)
	c := &component{
		name: name, title: name, where: "on " + addr,
		// bin/<name> of this checkout, started for this stack and its address (a second stack
		// from the same checkout has another STACK_DIR; a second instance, as the chaos run
		// starts them, another address)
		is: func(pid int, args []string) bool {
			if args[0] != bin {
				return false
			}
			env := Environ(pid)
			return slices.Contains(env, "STACK_DIR="+s.cfg.StackDir) && slices.Contains(env, addrVar(name)+"="+addr)
		},
		ports:   []port{{n, addrVar(name)}},
		stopSig: syscall.SIGTERM, forceSig: syscall.SIGKILL, grace: 15 * time.Second,
		// Started = serving HTTP, which a service does once its database is migrated. /readyz
		// may still say 503 (no replication slot before the connectors are registered): Up
		// waits for it at the end.
		readyTimeout: 60 * time.Second,
		ready: func(ctx context.Context) error {
			return httpOK(ctx, "http://127.0.0.1:"+portStr+"/healthz", 2*time.Second, nil)
		},
		spec: func() (spec, error) {
			return spec{path: bin, env: s.programEnv(name), user: s.cfg.get("RUN_USER"), log: s.logFile(name)}, nil
		},
	}
	if isSaga(name) {
		c.prepare = func(ctx context.Context) error { return s.migrate(ctx, name) }
	}
	return c
}

// programEnv is what program name is started with: its own settings (every <NAME>_* variable)
// but its database owner's password, the shared settings it reads, and nothing else. A service
// holds its runtime role, its Kafka login, the operator token and, for the customer reads, the
// customer tokens' PUBLIC key; never the superuser's, another service's, the owner's (migrate
// gets that), Connect's or the injector's secrets.
func (s *Stack) programEnv(name string) []string {
	P := upper(name)
	env := []string{"STACK_DIR=" + s.cfg.StackDir}
	keys := make([]string, 0, len(s.cfg.Env))
	for k := range s.cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case k == P+"_MIGRATIONS_DATABASE_URL" || k == P+"_OWNER_PG_PASSWORD" || k == P+"_SVC_PG_PASSWORD":
		case strings.HasPrefix(k, P+"_"), strings.HasPrefix(k, "OTEL_"),
			slices.Contains([]string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG", "ALLOWED_HOSTS", "MAX_CONNECTIONS"}, k):
			env = append(env, k+"="+s.cfg.Env[k])
		}
	}
	if isSaga(name) {
		env = append(env, "ADMIN_TOKEN="+s.cfg.get("ADMIN_TOKEN"))
		if v := s.cfg.get("CONNECT_STATUS_TOPIC"); v != "" {
			env = append(env, "CONNECT_STATUS_TOPIC="+v)
		}
	}
	switch name {
	case "order", "payment", "shipping":
		env = append(env, "CUSTOMER_TOKEN_PUBLIC_KEY="+s.cfg.get("CUSTOMER_TOKEN_PUBLIC_KEY"))
	case "notification":
		if v := s.cfg.get("NOTIFY_WEBHOOK_URL"); v != "" {
			env = append(env, "NOTIFY_WEBHOOK_URL="+v)
		}
	case "catalog":
		if v := s.cfg.get("RANKING_TZ"); v != "" { // the zone of the daily ranking (CATALOG_RANKING_TZ passes anyway)
			env = append(env, "RANKING_TZ="+v)
		}
	case "console":
		// It restarts connectors through Connect's REST API, as its one user.
		env = append(env, "CONNECT_REST_USER="+s.cfg.get("CONNECT_REST_USER"), "CONNECT_REST_PASSWORD="+s.cfg.get("CONNECT_REST_PASSWORD"))
	}
	return env
}

// migrate applies a service's migrations as its database's owner (`bin/<name> migrate`), the
// one process that gets the owner's password.
func (s *Stack) migrate(ctx context.Context, name string) error {
	v := upper(name) + "_MIGRATIONS_DATABASE_URL"
	sp := spec{path: filepath.Join(s.cfg.Root, "bin", name), args: []string{"migrate"},
		env: append(s.programEnv(name), v+"="+s.cfg.get(v)), user: s.cfg.get("RUN_USER"), log: s.logFile(name)}
	cmd, logf, err := s.command(sp)
	if err != nil {
		return fmt.Errorf("migrations of %s: %w", name, err)
	}
	defer logf.Close()
	cmd.SysProcAttr.Setsid = false
	if err := cmd.Run(); err != nil {
		s.tail(sp.log, 5)
		return fmt.Errorf("the migrations of %s failed (log: %s): %w", name, sp.log, err)
	}
	return nil
}

// ---- Prometheus and Alertmanager ----

func (s *Stack) monitor(name string) *component {
	dir := filepath.Join(s.cfg.StackDir, name)
	conf, portVar, bin := s.cfg.get("PROMETHEUS_CONF"), "PROMETHEUS_PORT", "prometheus"
	if name == "alertmanager" {
		conf, portVar, bin = s.cfg.get("ALERTMANAGER_CONF"), "ALERTMANAGER_PORT", "prometheus-alertmanager"
	}
	p := s.cfg.port(portVar)
	url := fmt.Sprintf("http://127.0.0.1:%d", p)
	if u := s.cfg.get(upper(name) + "_URL"); u != "" {
		url = u
	}
	return &component{
		name: name, title: name, where: "on " + url,
		is:      func(_ int, args []string) bool { return slices.Contains(args, "--config.file="+conf) },
		ports:   []port{{p, portVar}},
		stopSig: syscall.SIGTERM, forceSig: syscall.SIGKILL, grace: 30 * time.Second,
		readyTimeout: 60 * time.Second,
		ready:        func(ctx context.Context) error { return httpOK(ctx, url+"/-/ready", 2*time.Second, nil) },
		// its configuration rendered from infra/prometheus and checked (promtool, amtool)
		before: func(context.Context) (bool, error) { return s.configureMonitor(name) },
		// Reloaded when its configuration changed; Prometheus always, since it reads the rules
		// from infra/prometheus/rules as they are (a reload is cheap and keeps every series).
		whenUp: func(_ context.Context, id Identity, changed bool) error {
			if changed || name == "prometheus" {
				s.out.line("    reloading %s's configuration", name)
				return signal(id.Pid, syscall.SIGHUP)
			}
			return nil
		},
		spec: func() (spec, error) {
			path, err := exec.LookPath(bin)
			if err != nil {
				return spec{}, fmt.Errorf("%s not found (run scripts/install.sh)", bin)
			}
			args := []string{"--config.file=" + conf}
			if name == "prometheus" {
				args = append(args, "--storage.tsdb.path="+dir+"/data", "--storage.tsdb.retention.time=7d")
			} else {
				// without its cluster (gossip) listener, which would take 9094 on every address
				args = append(args, "--storage.path="+dir+"/data")
			}
			args = append(args, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", p))
			if name == "alertmanager" {
				args = append(args, "--cluster.listen-address=")
			}
			args = append(args, "--web.external-url="+url)
			return spec{path: path, args: args, env: []string{"LANG=C.UTF-8"}, user: s.cfg.get("RUN_USER"), log: s.logFile(name)}, nil
		},
	}
}
