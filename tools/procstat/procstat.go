// Package procstat reads what Linux's /proc says about processes' CPU time: one process
// (/proc/<pid>/stat), a process with all its descendants (a PostgreSQL postmaster and the
// backends it forks per connection), the whole machine (/proc/stat), and the TCP ports a process
// listens on. The root of /proc is a field, so tests read a fake one.
//
// CPU time is utime + stime of a process (all its threads, live and exited) plus cutime + cstime
// (its children that exited and were waited for). Summed over a live tree, that is every CPU
// second the tree ever used: a backend that exits moves its time into its parent's cutime.
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
	"syscall"
	"time"
)

// TicksPerSecond is USER_HZ, the unit of the times in /proc/<pid>/stat and /proc/stat: 100 on
// every architecture Linux runs Go on (the kernel converts its own HZ to it).
const TicksPerSecond = 100

// Ticks converts clock ticks to a duration.
func Ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / TicksPerSecond }

// Stat is what the bench needs of /proc/<pid>/stat.
type Stat struct {
	PID  int
	PPID int
	// Comm is the executable's name (at most 15 bytes; Postgres backends keep "postgres").
	Comm  string
	State byte
	// UTime, STime: the process's own user and system time; CUTime, CSTime: its waited-for
	// children's (and theirs). Clock ticks.
	UTime, STime, CUTime, CSTime uint64
	// StartTime is when the process started, in clock ticks after boot: with PID, its identity
	// (a pid can be reused).
	StartTime uint64
}

// CPU is every tick the process and its waited-for children used.
func (s Stat) CPU() uint64 { return s.UTime + s.STime + s.CUTime + s.CSTime }

// ParseStat parses one /proc/<pid>/stat line. The command name is in parentheses and may itself
// hold spaces and parentheses, so the fields are counted from the last ')'.
func ParseStat(line []byte) (Stat, error) {
	open := bytes.IndexByte(line, '(')
	end := bytes.LastIndexByte(line, ')')
	if open < 1 || end < open {
		return Stat{}, fmt.Errorf("stat %.40q: no (comm)", line)
	}
	var s Stat
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("stat %.40q: pid: %w", line, err)
	}
	s.PID, s.Comm = pid, string(line[open+1:end])
	// After the comm: state(3) ppid(4) pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime(14) stime(15) cutime(16) cstime(17) priority nice num_threads itrealvalue
	// starttime(22) ...
	f := strings.Fields(string(line[end+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("stat of %d: %d fields after the comm, want at least 20", pid, len(f))
	}
	s.State = f[0][0]
	num := func(i int) uint64 {
		if err != nil {
			return 0
		}
		var v int64
		// cutime and cstime are signed in the kernel's format; they are never negative in fact.
		v, err = strconv.ParseInt(f[i], 10, 64)
		return uint64(max(v, 0))
	}
	s.PPID = int(num(1))
	s.UTime, s.STime, s.CUTime, s.CSTime = num(11), num(12), num(13), num(14)
	s.StartTime = num(19)
	if err != nil {
		return Stat{}, fmt.Errorf("stat of %d: %w", pid, err)
	}
	return s, nil
}

// FS is a /proc to read.
type FS struct {
	// Root is the proc file system's mount point: "/proc", or a test's fake.
	Root string
}

// Proc is the real /proc.
var Proc = FS{Root: "/proc"}

// ErrNoProcess is returned for a pid that does not exist (any more).
var ErrNoProcess = errors.New("no such process")

// Stat reads /proc/<pid>/stat.
func (fs FS) Stat(pid int) (Stat, error) {
	raw, err := os.ReadFile(filepath.Join(fs.Root, strconv.Itoa(pid), "stat"))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return Stat{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(raw)
}

// All reads the stat of every process. Processes that exit while it reads are left out.
func (fs FS) All() ([]Stat, error) {
	entries, err := os.ReadDir(fs.Root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", fs.Root, err)
	}
	var out []Stat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := fs.Stat(pid); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// Tree is the CPU time of one process and all its descendants at one instant.
type Tree struct {
	// Root is the process the tree hangs from; its PID and StartTime identify it.
	Root Stat
	// Ticks sums CPU() over the root and every live descendant.
	Ticks uint64
	// Procs is how many processes the tree had.
	Procs int
	// Members are the stats of the root and every live descendant.
	Members []Stat
}

// CPU is the tree's CPU time.
func (t Tree) CPU() time.Duration { return Ticks(t.Ticks) }

// TreeOf sums the CPU time of pid and its descendants among all (the stats of every process,
// from All). ErrNoProcess when pid is not among them.
func TreeOf(pid int, all []Stat) (Tree, error) {
	children := map[int][]int{}
	byPID := make(map[int]Stat, len(all))
	for _, s := range all {
		byPID[s.PID] = s
		if s.PID != s.PPID {
			children[s.PPID] = append(children[s.PPID], s.PID)
		}
	}
	root, ok := byPID[pid]
	if !ok {
		return Tree{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	t := Tree{Root: root}
	seen := map[int]bool{}
	stack := []int{pid}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		t.Ticks += byPID[p].CPU()
		t.Procs++
		t.Members = append(t.Members, byPID[p])
		stack = append(stack, children[p]...)
	}
	return t, nil
}

// Machine is /proc/stat's first line: the whole machine's CPU time, every CPU summed.
type Machine struct {
	// Busy is every tick not idle and not waiting for I/O (user, nice, system, irq, softirq,
	// steal); Total includes idle and iowait. Guest time is already inside user and nice.
	Busy, Total uint64
}

// Machine reads /proc/stat.
func (fs FS) Machine() (Machine, error) {
	raw, err := os.ReadFile(filepath.Join(fs.Root, "stat"))
	if err != nil {
		return Machine{}, err
	}
	return ParseMachine(raw)
}

// ParseMachine parses the "cpu" line of /proc/stat: user nice system idle iowait irq softirq
// steal guest guest_nice.
func ParseMachine(raw []byte) (Machine, error) {
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return Machine{}, fmt.Errorf("/proc/stat: first line %.60q is not the cpu total", line)
	}
	var m Machine
	for i, v := range f[1:] {
		if i >= 8 { // guest and guest_nice are counted in user and nice already
			break
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return Machine{}, fmt.Errorf("/proc/stat: field %d: %w", i+1, err)
		}
		m.Total += n
		if i != 3 && i != 4 { // idle, iowait
			m.Busy += n
		}
	}
	return m, nil
}

// Exe is the path of the executable pid runs (/proc/<pid>/exe).
func (fs FS) Exe(pid int) (string, error) {
	return os.Readlink(filepath.Join(fs.Root, strconv.Itoa(pid), "exe"))
}

// ListenPorts returns the TCP ports pid listens on (IPv4 and IPv6), from its file descriptors'
// socket inodes and the network namespace's tables (/proc/<pid>/net/tcp, tcp6).
func (fs FS) ListenPorts(pid int) ([]int, error) {
	dir := filepath.Join(fs.Root, strconv.Itoa(pid))
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return nil, fmt.Errorf("file descriptors of %d: %w", pid, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var ports []int
	seen := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(dir, "net", table))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found, err := listening(f, inodes)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s of %d: %w", table, pid, err)
		}
		for _, p := range found {
			if !seen[p] {
				seen[p] = true
				ports = append(ports, p)
			}
		}
	}
	return ports, nil
}

// tcpListen is the state LISTEN in /proc/net/tcp.
const tcpListen = "0A"

// listening returns the local ports of the LISTEN sockets among inodes in a /proc/net/tcp table:
// "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...".
func listening(f *os.File, inodes map[string]bool) ([]int, error) {
	var out []int
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != tcpListen || !inodes[fields[9]] {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("local address %q: %w", fields[1], err)
		}
		out = append(out, int(port))
	}
	return out, sc.Err()
}
