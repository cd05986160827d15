package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// listenInodes returns the socket inodes that listen on TCP port (any address, IPv4 or IPv6),
// as the kernel lists them in /proc/net/tcp{,6}. A port in TIME_WAIT does not count: every
// server of the stack binds with SO_REUSEADDR.
func listenInodes(port int) []string {
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(raw), "\n")[1:] {
			fs := strings.Fields(l)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 32); err == nil && int(p) == port {
				out = append(out, fs[9])
			}
		}
	}
	return out
}

// PortInUse reports whether something listens on TCP port.
func PortInUse(port int) bool { return len(listenInodes(port)) > 0 }

// PortHolder returns the pid of a process that listens on port (0 when none is found).
func PortHolder(port int) int {
	want := map[string]bool{}
	for _, ino := range listenInodes(port) {
		want["socket:["+ino+"]"] = true
	}
	if len(want) == 0 {
		return 0
	}
	for _, pid := range Pids() {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && want[l] {
				return pid
			}
		}
	}
	return 0
}

// LockHolders returns the pids that hold a lock on file, from /proc/locks (which names the
// file by device and inode, and the process that took the lock). That is exact for the POSIX
// locks Kafka and PostgreSQL take; a flock or open-file-description lock may be held by others
// that share the open file, so when the recorded process does not have file open, every
// process that has it open is returned.
func LockHolders(file string) []int {
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		return nil
	}
	major, minor := (st.Dev>>8)&0xfff, (st.Dev&0xff)|((st.Dev>>12)&0xfff00)
	key := fmt.Sprintf("%02x:%02x:%d", major, minor, st.Ino)
	raw, err := os.ReadFile("/proc/locks")
	if err != nil {
		return nil
	}
	real, err := filepath.EvalSymlinks(file)
	if err != nil {
		real = file
	}
	var locked []int
	for _, l := range strings.Split(string(raw), "\n") {
		fs := strings.Fields(l)
		if len(fs) < 6 || fs[1] == "->" || fs[5] != key {
			continue
		}
		if pid, err := strconv.Atoi(fs[4]); err == nil && pid > 0 {
			locked = append(locked, pid)
		}
	}
	if len(locked) == 0 {
		return nil
	}
	var out []int
	for _, pid := range unique(locked) {
		if hasOpen(pid, real) {
			out = append(out, pid)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, pid := range Pids() {
		if hasOpen(pid, real) {
			out = append(out, pid)
		}
	}
	return out
}

// hasOpen reports whether pid has path open.
func hasOpen(pid int, path string) bool {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && l == path {
			return true
		}
	}
	return false
}

// CwdPids returns the processes (zombies aside, the dying included) whose working directory
// is dir: the processes of a PostgreSQL cluster, whose postmaster and backends all keep the
// data directory as theirs (after a SIGKILL of the postmaster its backends live on a moment).
func CwdPids(dir string) []int {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, pid := range Pids() {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && l == real {
			switch State(pid) {
			case 0, 'Z', 'X', 'x':
			default:
				out = append(out, pid)
			}
		}
	}
	return out
}

func unique(xs []int) []int {
	sort.Ints(xs)
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}
