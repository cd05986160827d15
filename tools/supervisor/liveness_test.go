package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testStack is a throwaway stack directory with its own ports, and no process of it running:
// the stand-ins below play its components.
func testStack(t *testing.T) (*Stack, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	root, stackDir := filepath.Join(dir, "repo"), filepath.Join(dir, "stack")
	for _, d := range []string{filepath.Join(root, "bin"), filepath.Join(stackDir, "kafka", "data"), filepath.Join(stackDir, "pg", "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"STACK_DIR": stackDir, "PG_HOST": "127.0.0.1", "KAFKA_HOST": "127.0.0.1",
		"PG_DATA": filepath.Join(stackDir, "pg", "data"), "PG_DIR": filepath.Join(stackDir, "pg"), "PG_LOG": filepath.Join(stackDir, "pg", "postgres.log"),
		"KAFKA_CONF": filepath.Join(stackDir, "kafka", "server.properties"), "CONNECT_CONF": filepath.Join(stackDir, "connect", "connect.properties"),
		"PROMETHEUS_CONF": filepath.Join(stackDir, "prometheus", "prometheus.yml"), "ALERTMANAGER_CONF": filepath.Join(stackDir, "alertmanager", "alertmanager.yml"),
		"ORDER_HTTP_ADDR": "127.0.0.1:" + strconv.Itoa(freePort(t))}
	for _, k := range []string{"PG_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "CONNECT_PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT"} {
		env[k] = strconv.Itoa(freePort(t))
	}
	out := &bytes.Buffer{}
	s := New(Config{Root: root, StackDir: stackDir, Env: env, Out: out, Err: out, LeftoverTimeout: 2 * time.Second, PortTimeout: time.Second})
	return s, out
}

// freePort returns a port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// standIn starts a process (our child: the test reaps it, or not, as it wants) and kills it
// when the test ends.
func standIn(t *testing.T, env []string, dir string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = env, dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "the stand-in to run", func() bool {
		id, err := ReadIdentity(cmd.Process.Pid)
		return err == nil && id.Exe != "" && len(Args(cmd.Process.Pid)) > 0
	})
	return cmd
}

// kafkaStandIn is a process whose command line is this stack's broker's.
func kafkaStandIn(t *testing.T, s *Stack, script string) *exec.Cmd {
	return standIn(t, nil, "", "bash", "-c", script, "kafka.Kafka", s.cfg.get("KAFKA_CONF"))
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10 s", what)
		}
	}
}

func record(t *testing.T, s *Stack, name string, id Identity) {
	t.Helper()
	if err := WritePidFile(s.pidFile(name), id); err != nil {
		t.Fatal(err)
	}
}

func running(t *testing.T, s *Stack, name string) (Identity, bool) {
	t.Helper()
	id, ok, err := s.Running(name)
	if err != nil {
		t.Fatal(err)
	}
	return id, ok
}

func TestRecordedProcessIsTheComponentOnlyWithItsIdentity(t *testing.T) {
	s, _ := testStack(t)
	kafka := kafkaStandIn(t, s, "while :; do sleep 0.2; done")
	id, err := ReadIdentity(kafka.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	record(t, s, "kafka", id)
	if got, ok := running(t, s, "kafka"); !ok || got != id {
		t.Fatalf("Running(kafka) = %+v, %v; want the stand-in %+v", got, ok, id)
	}
	if raw, _ := os.ReadFile(s.pidFile("kafka")); !strings.HasPrefix(string(raw), strconv.Itoa(id.Pid)+"\n") {
		t.Errorf("pid file %q: its first line is not the pid", raw)
	}

	// The pid reused: another live process has it now (kill -0 succeeds), but not the start
	// time or the executable recorded.
	other := standIn(t, nil, "", "sleep", "60")
	for _, stale := range []Identity{
		{Pid: other.Process.Pid, Start: id.Start, Exe: id.Exe},
		{Pid: kafka.Process.Pid, Start: id.Start + 1, Exe: id.Exe},
		{Pid: kafka.Process.Pid, Start: id.Start, Exe: "/usr/bin/sleep"},
	} {
		if stale.Live() {
			t.Errorf("%+v is live: a pid file that differs from the process in start time or executable is stale", stale)
		}
	}
	record(t, s, "kafka", Identity{Pid: other.Process.Pid, Start: id.Start, Exe: id.Exe})
	_ = kafka.Process.Kill()
	_ = kafka.Wait()
	if syscall.Kill(other.Process.Pid, 0) != nil {
		t.Fatal("the other process does not run")
	}
	if got, ok := running(t, s, "kafka"); ok {
		t.Errorf("a pid file naming a reused pid (pid %d, sleep) is taken for Kafka: %+v", other.Process.Pid, got)
	}
	if _, err := os.Stat(s.pidFile("kafka")); err != nil {
		t.Errorf("the stale pid file: %v", err)
	}
}

func TestZombieAndReapedProcessAreDead(t *testing.T) {
	s, _ := testStack(t)
	kafka := kafkaStandIn(t, s, "while :; do sleep 0.2; done")
	pid := kafka.Process.Pid
	id, _ := ReadIdentity(pid)
	record(t, s, "kafka", id)
	if _, ok := running(t, s, "kafka"); !ok {
		t.Fatal("the stand-in is not seen as Kafka")
	}
	// Killed and not reaped (we are its parent and do not wait yet): a zombie.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "zombie", func() bool { return State(pid) == 'Z' })
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("kill -0 of the zombie fails: the test proves nothing")
	}
	if _, ok := running(t, s, "kafka"); ok {
		t.Error("a zombie is taken for Kafka")
	}
	_ = kafka.Wait()
	if _, ok := running(t, s, "kafka"); ok {
		t.Error("the pid file of a killed and reaped process is taken for Kafka")
	}
}

func TestSIGKILLPendingIsDead(t *testing.T) {
	// A process with SIGKILL pending looks alive for a moment; one stopped (SIGSTOP) keeps it
	// pending until it is continued, which makes the moment last.
	s, _ := testStack(t)
	kafka := kafkaStandIn(t, s, "while :; do sleep 0.2; done")
	pid := kafka.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	waitFor(t, "stopped", func() bool { return State(pid) == 'T' })
	id, _ := ReadIdentity(pid)
	if !id.Live() {
		t.Fatal("a stopped process is not live")
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	// (the kernel may deliver it at once to a stopped process: then it is a zombie, dead too)
	if id.Live() {
		t.Errorf("pid %d, state %c, with SIGKILL sent, is live", pid, State(pid))
	}
}

func TestGoProgramIsThisStacksAtItsAddress(t *testing.T) {
	s, _ := testStack(t)
	bin := filepath.Join(s.cfg.Root, "bin", "order")
	addr := s.cfg.get("ORDER_HTTP_ADDR")
	program := func(env ...string) *exec.Cmd {
		p := standIn(t, env, "", "bash", "-c", `exec -a "$0" sleep 60`, bin)
		waitFor(t, "the stand-in's exec", func() bool { a := Args(p.Process.Pid); return len(a) > 0 && a[0] == bin })
		return p
	}
	for _, tc := range []struct {
		env  []string
		want bool
	}{
		{[]string{"STACK_DIR=" + s.cfg.StackDir, "ORDER_HTTP_ADDR=" + addr}, true},
		{[]string{"STACK_DIR=/elsewhere", "ORDER_HTTP_ADDR=" + addr}, false},
		{[]string{"STACK_DIR=" + s.cfg.StackDir, "ORDER_HTTP_ADDR=127.0.0.1:1"}, false},
	} {
		p := program(tc.env...)
		found, err := s.Find("order")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(found) == 1 && found[0] == p.Process.Pid; got != tc.want {
			t.Errorf("bin/order with %v: found %v, want it found: %v", tc.env, found, tc.want)
		}
		_ = p.Process.Kill()
		_ = p.Wait()
	}
}

func TestLostPidFileIsFoundAndRecorded(t *testing.T) {
	s, out := testStack(t)
	kafka := kafkaStandIn(t, s, "while :; do sleep 0.2; done")
	id, ok := running(t, s, "kafka")
	if !ok || id.Pid != kafka.Process.Pid {
		t.Fatalf("with its pid file lost, Running(kafka) = %+v, %v; want pid %d", id, ok, kafka.Process.Pid)
	}
	if got, err := ReadPidFile(s.pidFile("kafka")); err != nil || got != id {
		t.Errorf("pid file = %+v, %v; want %+v", got, err, id)
	}
	if !strings.Contains(out.String(), "which its pid file did not say: recording it") {
		t.Errorf("output %q does not say so", out)
	}

	// A pid file of the bash scripts before the supervisor (the pid alone, no identity): the
	// running component is adopted and its identity recorded, not a second one started.
	if err := os.WriteFile(s.pidFile("kafka"), []byte(strconv.Itoa(id.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, ok := running(t, s, "kafka"); !ok || got != id {
		t.Fatalf("with a pid-only pid file, Running(kafka) = %+v, %v; want %+v", got, ok, id)
	}
	if got, err := ReadPidFile(s.pidFile("kafka")); err != nil || got != id {
		t.Errorf("pid file after adoption = %+v, %v; want %+v", got, err, id)
	}
}

func TestStopSignalsNoStranger(t *testing.T) {
	s, _ := testStack(t)
	other := standIn(t, nil, "", "sleep", "60")
	id, _ := ReadIdentity(other.Process.Pid)
	id.Start++ // the pid of a component that died, reused by this sleep
	record(t, s, "kafka", id)
	if err := s.Stop(context.Background(), "kafka"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a signal would have ended it by now
	if !Live(other.Process.Pid) {
		t.Errorf("stop signalled pid %d (sleep), which is not Kafka: state %c", other.Process.Pid, State(other.Process.Pid))
	}
	if _, err := os.Stat(s.pidFile("kafka")); !os.IsNotExist(err) {
		t.Errorf("stop left the stale pid file: %v", err)
	}
}

func TestStopForcesAfterGrace(t *testing.T) {
	s, out := testStack(t)
	kafka := kafkaStandIn(t, s, `trap "" TERM; while :; do sleep 0.2; done`)
	// its trap is set once its loop runs: it has a child (sleep)
	waitFor(t, "the stand-in's loop", func() bool {
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", kafka.Process.Pid, kafka.Process.Pid))
		return strings.TrimSpace(string(raw)) != ""
	})
	c, _ := s.comp("kafka")
	c.grace = time.Second
	if err := s.Stop(context.Background(), "kafka"); err != nil {
		t.Fatal(err)
	}
	if st := State(kafka.Process.Pid); st != 'Z' && st != 0 {
		t.Errorf("stop left a process that ignores SIGTERM: state %c", st)
	}
	if !strings.Contains(out.String(), "sending SIGKILL") {
		t.Errorf("stop does not say it forced the process: %q", out)
	}
}

func TestStartWaitsForLockAndNamesItsHolder(t *testing.T) {
	s, _ := testStack(t)
	lock := filepath.Join(s.cfg.StackDir, "kafka", "data", ".lock")
	holder := standIn(t, nil, "", "bash", "-c", `exec 9>"$0" && flock 9 && exec sleep 60`, lock)
	// flock(1) takes the lock in a child that shares fd 9 and then exits: until it has, that child
	// holds the lock too (seen under load), so wait for the holder alone.
	waitFor(t, fmt.Sprintf("LockHolders = [%d] (bash, then sleep)", holder.Process.Pid), func() bool {
		got := LockHolders(lock)
		return len(got) == 1 && got[0] == holder.Process.Pid
	})
	t0 := time.Now()
	err := s.Start(context.Background(), "kafka")
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("locked by pid %d", holder.Process.Pid)) {
		t.Fatalf("Start(kafka) = %v; want it to give up naming pid %d", err, holder.Process.Pid)
	}
	if d := time.Since(t0); d < 2*time.Second {
		t.Errorf("gave up after %s, before LeftoverTimeout (2 s)", d)
	}
	if _, err := os.Stat(lock); err != nil || syscall.Kill(holder.Process.Pid, 0) != nil {
		t.Errorf("the lock file or its holder is gone: %v", err)
	}
	_ = holder.Process.Kill()
	_ = holder.Wait()
	if got := LockHolders(lock); len(got) != 0 {
		t.Errorf("LockHolders after the holder died = %v", got)
	}
}

func TestStartNamesThePortsHolder(t *testing.T) {
	s, _ := testStack(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+s.cfg.get("KAFKA_PORT"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !PortInUse(s.cfg.port("KAFKA_PORT")) {
		t.Fatal("PortInUse is false for a listening port")
	}
	err = s.Start(context.Background(), "kafka")
	want := fmt.Sprintf("port %s is in use by pid %d", s.cfg.get("KAFKA_PORT"), os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "KAFKA_PORT=") {
		t.Fatalf("Start(kafka) = %v; want %q and the setting KAFKA_PORT", err, want)
	}
}

func TestPostgresLeftovers(t *testing.T) {
	s, out := testStack(t)
	data := s.cfg.get("PG_DATA")
	lock := filepath.Join(data, "postmaster.pid")
	// A process of the cluster still runs (a stand-in with the data directory as its working
	// directory, as every backend has): the start gives up naming it, the lock untouched.
	backend := standIn(t, nil, data, "sleep", "60")
	if err := os.WriteFile(lock, []byte(strconv.Itoa(backend.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.pgLeftovers()
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", backend.Process.Pid)) {
		t.Fatalf("pgLeftovers = %v; want it to give up naming pid %d", err, backend.Process.Pid)
	}
	if _, err := os.Stat(lock); err != nil {
		t.Fatalf("the lock was removed while a process of the cluster runs: %v", err)
	}
	_ = backend.Process.Kill()
	_ = backend.Wait()

	// The postmaster's pid taken by another process: PostgreSQL itself would refuse to start;
	// the lock is stale and removed, the process left alone.
	stranger := standIn(t, nil, "", "sleep", "60")
	if err := os.WriteFile(lock, []byte(strconv.Itoa(stranger.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.pgLeftovers(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) || !strings.Contains(out.String(), "removing the stale") {
		t.Errorf("the stale lock was not removed (%v): %q", err, out)
	}
	time.Sleep(100 * time.Millisecond) // a signal would have ended it by now
	if !Live(stranger.Process.Pid) {
		t.Error("the process the stale lock named was signalled")
	}
}

func TestParseIdentity(t *testing.T) {
	id := Identity{Pid: 42, Start: 123456, Exe: "/usr/bin/java"}
	got, err := ParseIdentity(id.String())
	if err != nil || got != id {
		t.Errorf("ParseIdentity(String()) = %+v, %v; want %+v", got, err, id)
	}
	old, err := ParseIdentity("4242\n") // an earlier version's pid file
	if err != nil || old != (Identity{Pid: 4242}) || old.Live() {
		t.Errorf("ParseIdentity(pid only) = %+v, %v (live: %v)", old, err, old.Live())
	}
}
