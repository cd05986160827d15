package e2e

// What the host trust tests (host_trust_test.go) need to know of the running stack: its files,
// its processes and its credentials, as scripts/lib.sh lays them out; the paths, ports and
// credentials come from tools/stackenv.

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"outboxsaga.dev/stack"
	"outboxsaga.dev/tools/stackenv"
)

// components are the stack's processes, in start order: the infrastructure, every program of the
// stack table (outboxsaga.dev/stack), the monitoring.
var components = slices.Concat([]string{"postgres", "kafka", "connect"}, programNames(), []string{"alertmanager", "prometheus"})

// sagaServices own a database, an outbox and a connector (the table's saga services).
var sagaServices = sagaNames()

// sagaNames is every saga service of the stack table.
func sagaNames() []string {
	var names []string
	for _, p := range stack.SagaServices() {
		names = append(names, p.Name)
	}
	return names
}

// programNames is every program of the stack table, in start order.
func programNames() []string {
	var names []string
	for _, p := range stack.Programs() {
		names = append(names, p.Name)
	}
	return names
}

// pgOSUser is the OS user PostgreSQL runs as when root runs the stack (PG_OS_USER).
var pgOSUser = env("PG_OS_USER", "postgres")

// host is the running stack as the host sees it.
type host struct {
	stackenv.Env
	// Root is the checkout (where scripts/ is), Stack its stack directory (.stack), Secrets the
	// stack's secrets directory.
	Root, Stack, Secrets string
	// PGDir is the PostgreSQL cluster's directory (data/, run/, as root outside .stack: .stack/pg
	// is a symlink to it), PGHost and PGPort where the server listens.
	PGDir, PGHost, PGPort string
	// RunUser and RunGroup are the stack's OS user when root runs the stack, else "".
	RunUser, RunGroup string
}

// theHost reads where the running stack is; it fails tb when there is no stack directory.
func theHost(tb testing.TB) host {
	tb.Helper()
	e := stackenv.Load()
	h := host{Env: e, Stack: e.StackDir, Secrets: filepath.Join(e.StackDir, "secrets")}
	if _, err := os.Stat(h.Secrets); err != nil {
		tb.Fatalf("no stack here: %v (make up)", err)
	}
	h.Root = repoRoot(tb)
	pgDir, err := filepath.EvalSymlinks(filepath.Join(h.Stack, "pg"))
	if err != nil {
		tb.Fatalf("the PostgreSQL directory: %v", err)
	}
	h.PGDir = pgDir
	u, err := url.Parse(e.PGAdminURL)
	if err != nil {
		tb.Fatalf("PG_ADMIN_URL: %v", err)
	}
	h.PGHost, h.PGPort = u.Hostname(), u.Port()
	h.RunUser, h.RunGroup = runUser(h.Root)
	return h
}

// runUser is scripts/lib.sh's run_user_ready without its side effects: the stack's OS user
// (STACK_USER, default outbox-saga) and its group when root runs the stack and that user may read
// the checkout; "" when the stack runs as whoever started it.
func runUser(root string) (name, group string) {
	name = env("STACK_USER", "outbox-saga")
	if os.Getuid() != 0 || name == "root" {
		return "", ""
	}
	u, err := user.Lookup(name)
	if err != nil {
		return "", ""
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return "", ""
	}
	check := exec.Command("setpriv", "--reuid="+name, "--regid="+g.Name, "--clear-groups", "--",
		"test", "-r", filepath.Join(root, "infra", "kafka", "log4j2.properties"))
	if check.Run() != nil {
		return "", ""
	}
	return name, g.Name
}

// modeOf is path's permission bits, owner and group, as stat -c '%a %U %G' prints them ("" and
// an error in the test when it cannot be read).
func modeOf(tb testing.TB, path string) (mode os.FileMode, owner, group string) {
	tb.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		tb.Fatalf("stat %s: %v", path, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	owner, group = strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return fi.Mode().Perm(), owner, group
}

// whoami is the name of the user the tests run as.
func whoami(tb testing.TB) string {
	tb.Helper()
	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	return u.Username
}

// run runs a command with a time limit (and stdin, if any) and returns what it printed, standard
// output and error together, and its error.
func run(dir, stdin string, extraEnv []string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// asPGUser runs a command as the PostgreSQL OS user when root (as scripts/lib.sh's as_pg_user:
// runuser, an empty environment, from /), else as ourselves.
func asPGUser(stdin string, args ...string) (string, error) {
	if os.Getuid() != 0 {
		return run("", stdin, nil, 20*time.Second, args[0], args[1:]...)
	}
	full := append([]string{"-u", pgOSUser, "--", "env", "-i", "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}, args...)
	return run("/", stdin, nil, 20*time.Second, "runuser", full...)
}

// secretFile is the first line of the stack's secret name (fails tb when there is none).
func (h host) secretFile(tb testing.TB, name string) string {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(h.Secrets, name))
	if err != nil {
		tb.Fatalf("secret %s: %v", name, err)
	}
	return strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0])
}

// psql runs psql -X -w against the stack's server with a connection string conninfo and a
// password (in the environment, never on the command line).
func (h host) psql(password, conninfo string, args ...string) (string, error) {
	full := append([]string{"-X", "-w", conninfo}, args...)
	return run("", "", []string{"PGPASSWORD=" + password, "PGCONNECT_TIMEOUT=5"}, 20*time.Second, "psql", full...)
}

// conninfo is a libpq connection string to the stack's server as role, in database db, with
// extra settings (replication=true...).
func (h host) conninfo(role, db string, extra ...string) string {
	return strings.Join(append([]string{"host=" + h.PGHost, "port=" + h.PGPort, "user=" + role, "dbname=" + db}, extra...), " ")
}

// property is the last value of key in a Java properties file ("" when it has none).
func property(tb testing.TB, path, key string) string {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	v := ""
	for _, line := range strings.Split(string(raw), "\n") {
		if k, val, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
			v = strings.TrimSpace(val)
		}
	}
	return v
}

// pidOf is the recorded pid of component (fails tb when there is none).
func (h host) pidOf(tb testing.TB, component string) int {
	tb.Helper()
	pid, err := h.Pid(component)
	if err != nil {
		tb.Fatalf("%v (is it running?)", err)
	}
	return pid
}
