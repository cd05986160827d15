package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// RSS is the resident memory of one process of the stack, in KiB.
type RSS struct {
	Name string
	PID  int
	// KiB is the process's VmRSS.
	KiB int64
	// ChildrenAnonKiB sums the private (RssAnon) memory of its child processes: Postgres's
	// backends and background workers (their shared buffers are counted once, in KiB).
	ChildrenAnonKiB int64
}

// Component is one process of the stack as its pid file names it.
type Component struct {
	// Name is the pid file's name without .pid: postgres, kafka, connect, order, ...
	Name string
	PID  int
}

// Components lists the processes recorded in pidDir (*.pid, as scripts/lib.sh writes them),
// sorted by name. Unreadable pid files are left out; whether the process runs is not checked.
func Components(pidDir string) ([]Component, error) {
	files, err := filepath.Glob(filepath.Join(pidDir, "*.pid"))
	if err != nil {
		return nil, fmt.Errorf("list pid files: %w", err)
	}
	var out []Component
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
		if err != nil {
			continue
		}
		out = append(out, Component{Name: strings.TrimSuffix(filepath.Base(f), ".pid"), PID: pid})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ReadRSS reads VmRSS of every process recorded in pidDir (Components).
func ReadRSS(pidDir string) ([]RSS, error) {
	comps, err := Components(pidDir)
	if err != nil {
		return nil, err
	}
	children := childrenOf()
	var out []RSS
	for _, c := range comps {
		pid := c.PID
		st, err := procStatus(pid)
		if err != nil {
			continue // not running
		}
		r := RSS{Name: c.Name, PID: pid, KiB: st["VmRSS"]}
		for _, c := range children[pid] {
			if cs, err := procStatus(c); err == nil {
				r.ChildrenAnonKiB += cs["RssAnon"]
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// procStatus returns the kB fields of /proc/pid/status.
func procStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if k == "PPid" && len(fields) == 1 {
			n, _ := strconv.ParseInt(fields[0], 10, 64)
			out[k] = n
		}
		if len(fields) == 2 && fields[1] == "kB" {
			n, _ := strconv.ParseInt(fields[0], 10, 64)
			out[k] = n
		}
	}
	return out, sc.Err()
}

// childrenOf maps every process to its children.
func childrenOf() map[int][]int {
	out := map[int][]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		st, err := procStatus(pid)
		if err != nil {
			continue
		}
		out[int(st["PPid"])] = append(out[int(st["PPid"])], pid)
	}
	return out
}
