// Package clonetest checks that `make up` works from any checkout: it clones this repository
// (its committed HEAD) with `git clone` into a fresh directory of mode 0700 (as root that is out of
// the postgres OS user's reach, like root's home), and there, with a newcomer's environment and
// ports of its own, runs `make up`, a plain order and `make clean`; then nothing of that stack may
// be left: no process, no PostgreSQL directory. make test runs it before its own stack starts (one
// stack at a time), with CLONE_TEST=1; without it the test is skipped.
//
// With CLONE_TEST_TOPOLOGY=cluster (make test sets it) the clone brings up the cluster topology
// instead (TOPOLOGY=cluster make up) and, after the plain order, runs the cluster's check in its
// short variant (tools/cluster: a broker and a Connect worker SIGKILLed under load, the invariants
// checked): the default `make up` from nothing is make test's own stack on a fresh checkout (CI).
//
//	CLONE_TEST=1 go test -count=1 -timeout 30m -v ./clonetest
//
// CLONE_TEST_PORT_OFFSET (default STACK_PORT_OFFSET+500) moves the clone's ports; CLONE_TEST_KEEP=1
// keeps the clone (stopped) for a look.
package clonetest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"outboxsaga.dev/tools/stackenv"
)

// newcomer are the variables a newcomer's shell has: the system's and the toolchains', none of a
// stack's (scripts/lib.sh exports its ports, URLs and STACK_DIR).
var newcomer = regexp.MustCompile(`^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LC_[A-Z]+|TZ|TMPDIR|TERM|GO[A-Z0-9_]*|JAVA_HOME|MAVEN_[A-Z_]+|M2_HOME|[A-Za-z_]*_proxy|[A-Z_]*_PROXY|SSL_CERT_FILE|SSL_CERT_DIR|CURL_CA_BUNDLE|PG_DIR_BASE|PG_OS_USER)$`)

// clone is a checkout of the repository in its own directory, run with a newcomer's environment.
type clone struct {
	dir  string
	env  []string
	logs string // where the logs of its make up and make clean go: this stack's logs
}

// run runs a command in the clone and returns its output; with a log name, the output also goes
// to that file of this stack's logs as it comes, and a failure returns only its tail.
func (c clone) run(t *testing.T, log string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env = c.dir, c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	path := filepath.Join(c.logs, log)
	if log != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatalf("log %s: %v", path, err)
		}
		defer f.Close()
		cmd.Stdout = io.MultiWriter(&out, f)
		cmd.Stderr = cmd.Stdout
	}
	err := cmd.Run()
	if log != "" && err != nil {
		return tail(out.String(), 30) + "\n(log: " + path + ")", err
	}
	return out.String(), err
}

func TestFreshClone(t *testing.T) {
	if os.Getenv("CLONE_TEST") != "1" {
		t.Skip("CLONE_TEST=1 runs it (make test does, before its own stack starts)")
	}
	root := repoRoot(t)
	stack := stackenv.Load()
	offset, _ := strconv.Atoi(stackenv.Or("STACK_PORT_OFFSET", "0"))
	parent, err := os.MkdirTemp("", "outbox-saga-clone.") // mode 0700
	if err != nil {
		t.Fatal(err)
	}
	c := clone{dir: filepath.Join(parent, "outbox-saga"), logs: filepath.Join(stack.StackDir, "logs")}
	if err := os.MkdirAll(c.logs, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); newcomer.MatchString(k) {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env, "STACK_PORT_OFFSET="+stackenv.Or("CLONE_TEST_PORT_OFFSET", strconv.Itoa(offset+500)))
	topology := stackenv.Or("CLONE_TEST_TOPOLOGY", "single")
	c.env = append(c.env, "TOPOLOGY="+topology)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(c.dir, ".stack", "logs", "*.log"))
			for _, f := range logs {
				raw, _ := os.ReadFile(f)
				t.Logf("-- %s\n%s", f, tail(string(raw), 15))
			}
			_, _ = c.run(t, "", "make", "clean")
		}
		if os.Getenv("CLONE_TEST_KEEP") == "1" {
			t.Logf("kept %s", c.dir)
		} else {
			os.RemoveAll(parent)
		}
	})

	if out, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); len(out) > 0 {
		t.Logf("note: the clone holds the committed HEAD, not the uncommitted changes of %s", root)
	}
	if out, err := exec.Command("git", "clone", "-q", root, c.dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone %s: %v %s", root, err, out)
	}
	pgUser := stackenv.Or("PG_OS_USER", "postgres")
	if os.Getuid() == 0 {
		if exec.Command("runuser", "-u", pgUser, "--", "test", "-x", c.dir).Run() == nil {
			t.Fatalf("the %s OS user can enter %s: this test would prove nothing (TMPDIR?)", pgUser, c.dir)
		}
		t.Logf("the %s OS user cannot enter the clone (as in a 0700 home directory)", pgUser)
	}
	out, err := c.run(t, "", "bash", "-c", `. scripts/lib.sh && echo "$PG_DATA"`)
	if err != nil {
		t.Fatalf("the clone's PG_DATA: %v %s", err, out)
	}
	pgData := strings.TrimSpace(out)

	t0 := time.Now()
	if out, err := c.run(t, "clone-test-up.log", "make", "up"); err != nil {
		t.Fatalf("TOPOLOGY=%s make up in the clone: %v\n%s", topology, err, out)
	}
	up := time.Since(t0)
	t.Logf("TOPOLOGY=%s make up in the clone: %.0fs (Maven resolving the jars into the clone's .stack included)", topology, up.Seconds())

	// The data directory: 0700, owned by the server's OS user (the postgres user as root).
	owner := pgUser
	if os.Getuid() != 0 {
		me, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		owner = me.Username
	}
	if mode, who := modeOf(t, pgData); mode != 0o700 || who != owner {
		t.Fatalf("the clone's data directory %s is %o %s's, want 700 %s's", pgData, mode, who, owner)
	}

	if out, err := c.run(t, "", "scripts/plain-order.sh", "120"); err != nil {
		t.Fatalf("no plain order completed in the clone's stack: %v %s", err, out)
	} else {
		t.Log(strings.TrimSpace(out))
	}
	if topology == "cluster" {
		t1 := time.Now()
		out, err := c.run(t, "clone-test-cluster.log", "bash", "-c",
			`. scripts/lib.sh && ensure_secrets && supervisor_env && kafka_as viewer && cd tools/cluster && go test -count=1 -short -v -timeout 15m .`)
		if err != nil {
			t.Errorf("the cluster's check in the clone: %v\n%s", err, out)
		} else {
			t.Logf("the cluster's check (short) in the clone: passed in %.0fs; its log: %s", time.Since(t1).Seconds(),
				filepath.Join(c.logs, "clone-test-cluster.log"))
		}
	}

	if out, err := c.run(t, "clone-test-clean.log", "make", "clean"); err != nil {
		t.Fatalf("make clean in the clone: %v\n%s", err, out)
	}
	if _, err := os.Stat(pgData); err == nil {
		t.Errorf("make clean left the clone's PostgreSQL data directory %s", pgData)
	}
	if _, err := os.Stat(filepath.Join(c.dir, ".stack")); err == nil {
		t.Errorf("make clean left %s/.stack", c.dir)
	}
	if left := leftovers(c.dir, pgData); len(left) > 0 {
		t.Errorf("processes of the clone's stack still run after make clean:\n%s", strings.Join(left, "\n"))
	}
	t.Logf("make up %.0fs, all %.0fs", up.Seconds(), time.Since(t0).Seconds())
}

// leftovers are the live processes (zombies are not) that belong to the clone's stack: the
// clone's path in their command line or environment, or the clone's PostgreSQL data directory as
// their working directory.
func leftovers(dir, pgData string) []string {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var left []string
	for _, p := range procs {
		stat, err := os.ReadFile(filepath.Join(p, "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		environ, _ := os.ReadFile(filepath.Join(p, "environ"))
		cwd, _ := os.Readlink(filepath.Join(p, "cwd"))
		if bytes.Contains(cmdline, []byte(dir)) || bytes.Contains(environ, []byte(dir)) ||
			cwd == pgData || cwd == pgData+" (deleted)" {
			left = append(left, fmt.Sprintf("%s: %s", filepath.Base(p), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return left
}

// repoRoot is the checkout around the working directory: the first directory up with scripts/lib.sh.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "lib.sh")); err == nil {
			return dir
		}
	}
	t.Fatal("no checkout (scripts/lib.sh) above the working directory")
	return ""
}

// modeOf is path's permission bits and its owner's name.
func modeOf(t *testing.T, path string) (os.FileMode, string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the clone's data directory: %v", err)
	}
	uid := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid))
	if u, err := user.LookupId(uid); err == nil {
		return fi.Mode().Perm(), u.Username
	}
	return fi.Mode().Perm(), uid
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestLeftoversFindsTheClonesProcesses: a process with the clone's path in its environment is a
// leftover, and is none once it exited.
func TestLeftoversFindsTheClonesProcesses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox-saga")
	sleeper := exec.Command("sleep", "30")
	sleeper.Env = append(os.Environ(), "STACK_DIR="+dir+"/.stack")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(sleeper.Process.Pid)
	if left := leftovers(dir, filepath.Join(dir, "pg")); len(left) != 1 || !strings.HasPrefix(left[0], pid+": sleep 30") {
		t.Errorf("leftovers = %q, want the sleeper %s", left, pid)
	}
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	if left := leftovers(dir, filepath.Join(dir, "pg")); len(left) != 0 {
		t.Errorf("leftovers after its exit = %q, want none", left)
	}
}
