package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"outboxsaga.dev/tools/invariant"
	"outboxsaga.dev/tools/supervisor"
)

// Components the chaos run kills: the infrastructure, every consumer service and the webhook
// sink (the notification service's outside world).
var Components = append([]string{"postgres", "kafka", "connect", "webhooksink"}, Services...)

// Services are the consumer services (they can run a second instance).
var Services = invariant.Services

// Stack drives the native stack through its scripts and the supervisor's pid files
// (tools/supervisor).
type Stack struct {
	Root     string // the repository
	StackDir string // .stack
	Log      func(format string, args ...any)
}

func (s *Stack) pidFile(name string) string { return filepath.Join(s.StackDir, "pids", name+".pid") }

// Pid returns the pid of a component when its pid file records a process that is still it
// (same pid, start time and executable); 0 when none.
func (s *Stack) Pid(name string) int {
	id, err := supervisor.ReadPidFile(s.pidFile(name))
	if err != nil || !id.Live() {
		return 0
	}
	return id.Pid
}

// Kill sends SIGKILL to the component recorded in its pid file and returns at once, as a
// user's `kill -9` does: the restart (Start) must cope with whatever the dying process still
// holds (its exit, its backends, its locks and ports).
func (s *Stack) Kill(name string) error {
	pid := s.Pid(name)
	if pid <= 0 {
		return fmt.Errorf("kill %s: it does not run (no live process recorded in %s)", name, s.pidFile(name))
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s (pid %d): %w", name, pid, err)
	}
	return nil
}

// waitGone waits until pid has exited (or the timeout passes).
func waitGone(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Start brings the stack back after name was killed or stopped: one run of scripts/up.sh, the
// command behind `make up`, which starts what is not running (after waiting for what a killed
// process left behind) and re-registers the connectors. No retry: a failing start is a failure
// of the run, so that every kill cycle also proves that one `make up` heals the stack.
func (s *Stack) Start(ctx context.Context, name string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.Root, "scripts", "up.sh"))
	cmd.Env = append(os.Environ(), "SERVICES_NO_BUILD=1") // chaos.sh built them before the run
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("make up after %s: %w: %s", name, err, lastLines(string(out), 15))
	}
	return nil
}

// Stop stops a component gracefully (scripts/down.sh <name>: the supervisor's stop).
func (s *Stack) Stop(ctx context.Context, name string) error {
	out, err := exec.CommandContext(ctx, filepath.Join(s.Root, "scripts", "down.sh"), name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("stop %s: %w: %s", name, err, lastLines(string(out), 10))
	}
	return nil
}

// Extra is a second instance of a consumer service (same database, same group, another port).
type Extra struct {
	Name string
	Addr string
	cmd  *exec.Cmd
}

// StartExtra starts bin/<svc> on addr with the stack's environment and waits for /readyz.
func (s *Stack) StartExtra(ctx context.Context, name, addr string) (*Extra, error) {
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("start second %s: %s is in use", name, addr)
	}
	logf, err := os.Create(filepath.Join(s.StackDir, "logs", name+"-extra.log"))
	if err != nil {
		return nil, fmt.Errorf("log of second %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(s.Root, "bin", name))
	cmd.Env = append(os.Environ(), strings.ToUpper(name)+"_HTTP_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start second %s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }()
	e := &Extra{Name: name, Addr: addr, cmd: cmd}
	if err := waitReady(ctx, "http://"+addr+"/readyz", 60*time.Second); err != nil {
		e.Kill()
		return nil, fmt.Errorf("second %s: %w", name, err)
	}
	return e, nil
}

// Kill sends SIGKILL to the extra instance.
func (e *Extra) Kill() {
	if e.cmd.Process != nil {
		_ = e.cmd.Process.Kill()
		waitGone(e.cmd.Process.Pid, 10*time.Second)
	}
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready after %s", url, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
