package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Switches counts a process's context switches: voluntary (it blocked: a read, a lock, a sleep)
// and nonvoluntary (the scheduler took the CPU from it).
type Switches struct {
	Voluntary, Nonvoluntary uint64
}

// Add returns s + o.
func (s Switches) Add(o Switches) Switches {
	return Switches{Voluntary: s.Voluntary + o.Voluntary, Nonvoluntary: s.Nonvoluntary + o.Nonvoluntary}
}

// Total is both kinds together.
func (s Switches) Total() uint64 { return s.Voluntary + s.Nonvoluntary }

// Switches sums the context switches of every live thread of pid (/proc/<pid>/task/*/status:
// the status of a process counts its main thread only). Threads that exited are not counted, so
// for a long-lived process (a JVM, a Go program, a pooled backend) this is its count; a process
// that forks short-lived ones undercounts. ErrNoProcess when pid is gone.
func (fs FS) Switches(pid int) (Switches, error) {
	dir := filepath.Join(fs.Root, strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return Switches{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	if err != nil {
		return Switches{}, fmt.Errorf("threads of %d: %w", pid, err)
	}
	var sum Switches
	for _, t := range tasks {
		raw, err := os.ReadFile(filepath.Join(dir, t.Name(), "status"))
		if err != nil {
			continue // the thread exited meanwhile
		}
		s, err := ParseSwitches(raw)
		if err != nil {
			return Switches{}, fmt.Errorf("thread %s of %d: %w", t.Name(), pid, err)
		}
		sum = sum.Add(s)
	}
	return sum, nil
}

// ParseSwitches reads voluntary_ctxt_switches and nonvoluntary_ctxt_switches of a
// /proc/<pid>/status file.
func ParseSwitches(raw []byte) (Switches, error) {
	var s Switches
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch key {
		case "voluntary_ctxt_switches":
			dst = &s.Voluntary
		case "nonvoluntary_ctxt_switches":
			dst = &s.Nonvoluntary
		default:
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return Switches{}, fmt.Errorf("%s: %w", key, err)
		}
		*dst = n
		found++
	}
	if found != 2 {
		return Switches{}, errors.New("status without both context switch counts")
	}
	return s, sc.Err()
}

// Cmdline is pid's command line with its NULs as spaces, trimmed (a PostgreSQL backend rewrites
// its own: "postgres: order_svc order_db 127.0.0.1(40112) idle").
func (fs FS) Cmdline(pid int) (string, error) {
	raw, err := os.ReadFile(filepath.Join(fs.Root, strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(raw, []byte{0}, []byte{' '}))), nil
}

// PostgresRole names what a PostgreSQL child process does, from the command line it sets
// itself: "walsender" for a WAL sender (a connector's logical replication connection),
// "user@database" for a client backend ("order_svc@order_db"; every scratch database of a test,
// test_*, is "user@test_*"), or the auxiliary process's name ("checkpointer", "walwriter",
// "autovacuum worker", ...).
func PostgresRole(cmdline string) string {
	rest, ok := strings.CutPrefix(cmdline, "postgres: ")
	if !ok {
		return "other"
	}
	rest = strings.TrimSpace(rest)
	f := strings.Fields(rest)
	switch {
	case len(f) == 0:
		return "other"
	case f[0] == "walsender":
		return "walsender"
	case len(f) >= 3 && strings.Contains(f[2], "("), len(f) >= 3 && f[2] == "[local]":
		db := f[1]
		if strings.HasPrefix(db, "test_") {
			db = "test_*"
		}
		return f[0] + "@" + db
	case f[0] == "autovacuum" && len(f) >= 2:
		return "autovacuum " + f[1]
	case f[0] == "parallel" || f[0] == "logical":
		return strings.Join(f[:min(2, len(f))], " ")
	}
	if i := strings.IndexByte(rest, '('); i > 0 {
		rest = strings.TrimSpace(rest[:i])
	}
	return rest
}
