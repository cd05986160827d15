package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Identity names one process for as long as it lives: the kernel hands a freed pid to the
// next process, but not with the same start time (field 22 of /proc/<pid>/stat, in clock
// ticks since boot) and executable.
type Identity struct {
	Pid   int
	Start uint64 // start time, clock ticks after boot
	Exe   string // /proc/<pid>/exe, without the " (deleted)" a rebuilt binary's link gets
}

// ReadIdentity returns the identity of the process pid now has.
func ReadIdentity(pid int) (Identity, error) {
	st, err := readStat(pid)
	if err != nil {
		return Identity{}, err
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return Identity{}, fmt.Errorf("executable of pid %d: %w", pid, err)
	}
	return Identity{Pid: pid, Start: st.start, Exe: strings.TrimSuffix(exe, " (deleted)")}, nil
}

// Live reports whether id is still the process it was recorded as and can still serve: the
// pid exists with the same start time and executable, is not a zombie, and has no SIGKILL
// pending (between `kill -9` and its exit a process still looks alive).
func (id Identity) Live() bool {
	if id.Pid <= 0 {
		return false
	}
	now, err := ReadIdentity(id.Pid)
	if err != nil || now.Start != id.Start || now.Exe != id.Exe {
		return false
	}
	return Live(id.Pid)
}

// String is the pid file's form: the pid on the first line (what every reader of a pid file
// takes), then start=<ticks> and exe=<path>.
func (id Identity) String() string {
	return fmt.Sprintf("%d\nstart=%d\nexe=%s\n", id.Pid, id.Start, id.Exe)
}

// ParseIdentity reads a pid file's text. A file of an earlier version has the pid alone:
// its Start is 0 and Exe empty, which no live process matches.
func ParseIdentity(text string) (Identity, error) {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil {
		return Identity{}, fmt.Errorf("pid file: %w", err)
	}
	id := Identity{Pid: pid}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
		switch k {
		case "start":
			id.Start, _ = strconv.ParseUint(v, 10, 64)
		case "exe":
			id.Exe = v
		}
	}
	return id, nil
}

// ReadPidFile reads the identity recorded in path.
func ReadPidFile(path string) (Identity, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Identity{}, err
	}
	return ParseIdentity(string(raw))
}

// WritePidFile records id in path (0600, replaced whole).
func WritePidFile(path string, id Identity) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(id.String()), 0o600); err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	return nil
}

type stat struct {
	state byte
	ppid  int
	start uint64
}

// readStat parses /proc/<pid>/stat. The command name (field 2) may hold spaces and
// parentheses: the fields after it follow the last ')'.
func readStat(pid int) (stat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 || i+2 >= len(raw) {
		return stat{}, fmt.Errorf("stat of pid %d: malformed", pid)
	}
	f := strings.Fields(string(raw[i+2:])) // f[0] is field 3 (state)
	if len(f) < 20 {
		return stat{}, fmt.Errorf("stat of pid %d: %d fields", pid, len(f)+2)
	}
	ppid, _ := strconv.Atoi(f[1])
	start, err := strconv.ParseUint(f[19], 10, 64) // field 22
	if err != nil {
		return stat{}, fmt.Errorf("stat of pid %d: start time: %w", pid, err)
	}
	return stat{state: f[0][0], ppid: ppid, start: start}, nil
}

// State returns the process's state letter (R, S, D, Z for a zombie, ...); 0 when it is gone.
func State(pid int) byte {
	st, err := readStat(pid)
	if err != nil {
		return 0
	}
	return st.state
}

// Exists reports whether pid exists, as a zombie or dying too.
func Exists(pid int) bool {
	switch State(pid) {
	case 0, 'X', 'x':
		return false
	}
	return true
}

// Live reports whether pid exists, is not a zombie and has no SIGKILL pending.
func Live(pid int) bool {
	switch State(pid) {
	case 0, 'Z', 'X', 'x':
		return false
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || (k != "SigPnd" && k != "ShdPnd") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err == nil && mask&(1<<(uint(syscall.SIGKILL)-1)) != 0 {
			return false
		}
	}
	return true
}

// Args returns the process's arguments (none for a zombie or a kernel thread).
func Args(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(raw) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
}

// Environ returns the process's initial environment, NAME=VALUE each.
func Environ(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || len(raw) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
}

// Pids lists every process of the host.
func Pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Describe returns "pid N (command line, user U)" for messages; a long command line is
// shortened in the middle (what identifies a JVM is at its end).
func Describe(pid int) string {
	if !Exists(pid) {
		return fmt.Sprintf("pid %d (exited)", pid)
	}
	args := strings.Join(Args(pid), " ")
	if args == "" {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		args = "[" + strings.TrimSpace(string(comm)) + "]"
		if State(pid) == 'Z' {
			args += " zombie"
		}
	}
	if len(args) > 160 {
		args = args[:strings.IndexByte(args+" ", ' ')] + " ... " + args[len(args)-110:]
	}
	owner := "?"
	var st syscall.Stat_t
	if syscall.Stat(fmt.Sprintf("/proc/%d", pid), &st) == nil {
		owner = strconv.Itoa(int(st.Uid))
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
	}
	return fmt.Sprintf("pid %d (%s, user %s)", pid, args, owner)
}

// signal sends sig to pid; a process already gone is no error.
func signal(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to pid %d: %w", sig, pid, err)
	}
	return nil
}
