package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHeal: `make up` heals a crash. For each component: SIGKILL it, and at once run
// scripts/up.sh (what `make up` runs), once. After that one call the stack must be whole again:
// the killed component runs again (a new process, exactly one), every connector and its task
// is RUNNING, and a plain order completes (scripts/plain-order.sh). It logs the time each step
// took. It needs the running stack and scripts/lib.sh's environment (supervisor_env), and kills
// its components: only STACK_HEAL=1 runs it (scripts/test.sh does); STACK_HEAL_COMPONENTS
// chooses the components (default: all). Logs of each make up: .stack/logs/heal-<component>.log.
func TestHeal(t *testing.T) {
	if os.Getenv("STACK_HEAL") != "1" {
		t.Skip("STACK_HEAL=1 runs it (scripts/test.sh does): it kills every component of the running stack")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromEnv(root, os.Environ())
	if err != nil {
		t.Skipf("not the stack's environment: %v", err)
	}
	cfg.Out, cfg.Err = os.Stderr, os.Stderr
	s := New(cfg)
	for _, n := range s.Names() {
		if _, ok, _ := s.Running(n); !ok {
			t.Skipf("the stack is not up: %s does not run (make up)", n)
		}
	}
	targets := s.Names()
	if v := os.Getenv("STACK_HEAL_COMPONENTS"); v != "" {
		targets = strings.Fields(v)
	}
	var rows []string
	for _, c := range targets {
		t.Run(c, func(t *testing.T) {
			row, err := heal(t, s, c)
			rows = append(rows, fmt.Sprintf("%-13s %s", c, row))
			if err != nil {
				t.Error(err)
			}
		})
	}
	t.Logf("make up after a SIGKILL of each component:\n    %-13s %-9s %s\n    %s", "killed", "make up", "plain order completed after", strings.Join(rows, "\n    "))
}

// heal kills c, runs make up once and checks that the stack is whole; it returns the row of
// the table (the time of make up, of the plain order).
func heal(t *testing.T, s *Stack, c string) (string, error) {
	ctx := context.Background()
	logPath := filepath.Join(s.cfg.StackDir, "logs", "heal-"+c+".log")
	old, err := s.Kill(c)
	if err != nil {
		return "FAILED", err
	}
	t0 := time.Now()
	if out, err := s.makeUp(ctx, logPath); err != nil {
		// once more, so that the next components can be tested
		if _, err2 := s.makeUp(ctx, logPath); err2 != nil {
			t.Fatalf("the stack does not come up again after the kill of %s (log: %s)", c, logPath)
		}
		return "FAILED", fmt.Errorf("make up failed after %s: %w\n%s", since(t0), err, lastLines(out, 25))
	}
	upS := since(t0) + "s"
	id, ok, _ := s.Running(c)
	if !ok || id == old {
		return upS + " (not whole)", fmt.Errorf("%s is not running again after make up (was pid %d, now %+v)", c, old.Pid, id)
	}
	if found, _ := s.Find(c); len(found) != 1 {
		return upS + " (not whole)", fmt.Errorf("%d instances of %s run after make up (%v), want 1", len(found), c, found)
	}
	if err := s.connectorsRunning(ctx); err != nil {
		return upS + " (not whole)", fmt.Errorf("after make up: %w", err)
	}
	t1 := time.Now()
	out, err := exec.CommandContext(ctx, filepath.Join(s.cfg.Root, "scripts", "plain-order.sh"), "120").CombinedOutput()
	if err != nil {
		return upS + " FAILED", fmt.Errorf("no plain order completed after make up: %w\n%s", err, lastLines(string(out), 3))
	}
	t.Logf("make up healed it in %s: %s is pid %d; connectors RUNNING; %s", upS, c, id.Pid, lastLines(string(out), 1))
	return fmt.Sprintf("%-9s %ss", upS, since(t1)), nil
}

// makeUp runs scripts/up.sh (make up) with its output in logPath (appended).
func (s *Stack) makeUp(ctx context.Context, logPath string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.cfg.Root, "scripts", "up.sh"))
	out, err := cmd.CombinedOutput()
	f, ferr := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if ferr == nil {
		_, _ = f.Write(out)
		f.Close()
	}
	return string(out), err
}

// connectorsRunning: every connector of connectors/*.json exists, and it and all its tasks
// are RUNNING.
func (s *Stack) connectorsRunning(ctx context.Context) error {
	files, _ := filepath.Glob(filepath.Join(s.cfg.Root, "connectors", "*.json"))
	url := fmt.Sprintf("http://127.0.0.1:%d/connectors?expand=status", s.cfg.port("CONNECT_PORT"))
	raw, err := httpGet(ctx, url, 10*time.Second, &[2]string{s.cfg.get("CONNECT_REST_USER"), s.cfg.get("CONNECT_REST_PASSWORD")})
	if err != nil {
		return err
	}
	var got map[string]struct {
		Status struct {
			Connector struct{ State string }   `json:"connector"`
			Tasks     []struct{ State string } `json:"tasks"`
		} `json:"status"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		return fmt.Errorf("connectors: %w", err)
	}
	for _, f := range files {
		var c struct{ Name string }
		b, _ := os.ReadFile(f)
		if err := json.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		st, ok := got[c.Name]
		running := ok && st.Status.Connector.State == "RUNNING" && len(st.Status.Tasks) > 0
		for _, task := range st.Status.Tasks {
			running = running && task.State == "RUNNING"
		}
		if !running {
			return fmt.Errorf("connector %s is not RUNNING with all its tasks: %s", c.Name, raw)
		}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
