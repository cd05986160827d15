package procstat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// statLine is a /proc/<pid>/stat line as Linux writes it.
func statLine(pid, ppid int, comm string, utime, stime, cutime, cstime, start uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 1171 0 0 0 %d %d %d %d 20 0 7 0 %d 1234567 890 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
		pid, comm, ppid, pid, pid, utime, stime, cutime, cstime, start)
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Stat
	}{
		{"plain", statLine(42, 1, "postgres", 10, 20, 30, 40, 5000),
			Stat{PID: 42, PPID: 1, Comm: "postgres", State: 'S', UTime: 10, STime: 20, CUTime: 30, CSTime: 40, StartTime: 5000}},
		// A comm may hold spaces and parentheses: the fields count from the last ')'.
		{"comm with ) and spaces", statLine(7, 3, "evil) S 1 (x", 1, 2, 3, 4, 99),
			Stat{PID: 7, PPID: 3, Comm: "evil) S 1 (x", State: 'S', UTime: 1, STime: 2, CUTime: 3, CSTime: 4, StartTime: 99}},
		{"real line of a JVM", "13392 (java) S 1 13380 13380 0 -1 1077936192 153893 0 3 0 11734 3251 0 0 20 0 88 0 873621 3710332928 112093 18446744073709551615 94366457364480 94366457365386 140726734318640 0 0 0 0 0 16800975 0 0 0 17 1 0 0 0 0 0 94366457376144 94366457376880 94366464999424 140726734322541 140726734323398 140726734323398 140726734327759 0",
			Stat{PID: 13392, PPID: 1, Comm: "java", State: 'S', UTime: 11734, STime: 3251, StartTime: 873621}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.line))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ParseStat = %+v\nwant        %+v", got, tt.want)
			}
		})
	}
	if got := (Stat{UTime: 1, STime: 2, CUTime: 3, CSTime: 4}).CPU(); got != 10 {
		t.Errorf("CPU = %d, want 10", got)
	}
	for _, bad := range []string{"", "12 no comm", "x (a) S 1", "12 (a) S 1 2 3", "12 (a) S 1 1 1 0 -1 0 0 0 0 0 ten 20 0 0 20 0 1 0 5 0 0"} {
		if s, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) = %+v, want an error", bad, s)
		}
	}
}

// fakeProc writes a /proc with the given stat lines (pid → line) and /proc/stat.
func fakeProc(t *testing.T, stats map[int]string, machine string) FS {
	t.Helper()
	root := t.TempDir()
	for pid, line := range stats {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte(machine), 0o644); err != nil {
		t.Fatal(err)
	}
	// Not processes: ignored.
	for _, d := range []string{"sys", "self-not-a-pid"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return FS{Root: root}
}

func TestTreeSumsTheProcessAndEveryDescendant(t *testing.T) {
	fs := fakeProc(t, map[int]string{
		1:   statLine(1, 0, "init", 500, 500, 0, 0, 1),
		100: statLine(100, 1, "postgres", 10, 5, 700, 300, 1000), // postmaster: exited backends in cutime/cstime
		101: statLine(101, 100, "postgres", 20, 10, 0, 0, 1001),  // checkpointer
		102: statLine(102, 100, "postgres", 30, 15, 0, 0, 1500),  // a backend
		103: statLine(103, 102, "postgres", 1, 1, 2, 2, 1501),    // a parallel worker under it
		200: statLine(200, 1, "java", 1000, 100, 0, 0, 2000),     // someone else
	}, "cpu  1 2 3 4 5 6 7 8 9 10\n")
	all, err := fs.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Fatalf("All read %d processes, want 6", len(all))
	}
	tree, err := TreeOf(100, all)
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(10 + 5 + 700 + 300 + 20 + 10 + 30 + 15 + 1 + 1 + 2 + 2)
	if tree.Ticks != want || tree.Procs != 4 || tree.Root.StartTime != 1000 {
		t.Errorf("tree of 100 = %d ticks over %d processes (root start %d), want %d over 4 (start 1000)",
			tree.Ticks, tree.Procs, tree.Root.StartTime, want)
	}
	if tree.CPU() != time.Duration(want)*10*time.Millisecond {
		t.Errorf("tree CPU = %s", tree.CPU())
	}
	leaf, _ := TreeOf(200, all)
	if leaf.Ticks != 1100 || leaf.Procs != 1 {
		t.Errorf("tree of a leaf = %d ticks, %d processes, want 1100, 1", leaf.Ticks, leaf.Procs)
	}
	if _, err := TreeOf(999, all); !errors.Is(err, ErrNoProcess) {
		t.Errorf("tree of a missing pid: %v, want ErrNoProcess", err)
	}
	if _, err := fs.Stat(999); !errors.Is(err, ErrNoProcess) {
		t.Errorf("stat of a missing pid: %v, want ErrNoProcess", err)
	}
}

func TestMachine(t *testing.T) {
	fs := fakeProc(t, nil, "cpu  100 5 50 1000 20 3 7 2 40 1\ncpu0 50 2 25 500 10 1 3 1 20 0\nintr 1 2 3\n")
	m, err := fs.Machine()
	if err != nil {
		t.Fatal(err)
	}
	// user nice system irq softirq steal; guest is inside user already.
	if m.Busy != 100+5+50+3+7+2 || m.Total != 100+5+50+1000+20+3+7+2 {
		t.Errorf("Machine = %+v, want busy 167, total 1187", m)
	}
	for _, bad := range []string{"", "intr 1 2\n", "cpu  1 2 x 4 5\n"} {
		if m, err := ParseMachine([]byte(bad)); err == nil {
			t.Errorf("ParseMachine(%q) = %+v, want an error", bad, m)
		}
	}
}

func TestListenPorts(t *testing.T) {
	fs := fakeProc(t, map[int]string{300: statLine(300, 1, "order", 1, 1, 0, 0, 1)}, "cpu  1 1 1 1 1\n")
	dir := filepath.Join(fs.Root, "300")
	for _, d := range []string{"fd", "net"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// fd 3: the HTTP listener (IPv4 127.0.0.1:8080), 4: a client connection, 5: the pprof of
	// nobody (IPv6 [::]:6060), 6: a file.
	for fd, target := range map[string]string{"3": "socket:[1111]", "4": "socket:[2222]", "5": "socket:[3333]", "6": "/tmp/x"} {
		if err := os.Symlink(target, filepath.Join(dir, "fd", fd)); err != nil {
			t.Fatal(err)
		}
	}
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:E0A2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9999 1 0000000000000000 100 0 0 10 0
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:17AC 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3333 1 0000000000000000 100 0 0 10 0
`
	for name, body := range map[string]string{"tcp": tcp, "tcp6": tcp6} {
		if err := os.WriteFile(filepath.Join(dir, "net", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ports, err := fs.ListenPorts(300)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ports)
	// 8080 and 6060 are ours; the connection (not LISTEN) and port 9090 (another process's
	// socket) are not.
	if !slices.Equal(ports, []int{6060, 8080}) {
		t.Errorf("ListenPorts = %v, want [6060 8080]", ports)
	}
}

func TestTheRealProc(t *testing.T) {
	self, err := Proc.Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.PID != os.Getpid() || self.PPID != os.Getppid() || self.StartTime == 0 {
		t.Errorf("own stat = %+v", self)
	}
	exe, err := Proc.Exe(os.Getpid())
	if want, _ := os.Executable(); err != nil || exe != want {
		t.Errorf("own exe = %q, %v; want %q", exe, err, want)
	}
	m, err := Proc.Machine()
	if err != nil || m.Total == 0 || m.Busy > m.Total {
		t.Errorf("machine = %+v, %v", m, err)
	}
}

func TestParseSwitches(t *testing.T) {
	raw := []byte("Name:\tpostgres\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t1234\nnonvoluntary_ctxt_switches:\t56\n")
	s, err := ParseSwitches(raw)
	if err != nil {
		t.Fatal(err)
	}
	if s != (Switches{Voluntary: 1234, Nonvoluntary: 56}) || s.Total() != 1290 {
		t.Fatalf("got %+v", s)
	}
	if _, err := ParseSwitches([]byte("Name:\tx\nvoluntary_ctxt_switches:\t1\n")); err == nil {
		t.Fatal("a status without nonvoluntary_ctxt_switches parsed")
	}
}

func TestSwitchesSumsThreads(t *testing.T) {
	root := t.TempDir()
	for tid, n := range map[string]string{"10": "3", "11": "4"} {
		dir := filepath.Join(root, "10", "task", tid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		st := "voluntary_ctxt_switches:\t" + n + "\nnonvoluntary_ctxt_switches:\t1\n"
		if err := os.WriteFile(filepath.Join(dir, "status"), []byte(st), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := FS{Root: root}.Switches(10)
	if err != nil {
		t.Fatal(err)
	}
	if s != (Switches{Voluntary: 7, Nonvoluntary: 2}) {
		t.Fatalf("got %+v, want the two threads summed", s)
	}
	if _, err := (FS{Root: root}).Switches(11); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("missing pid: %v", err)
	}
}

func TestPostgresRole(t *testing.T) {
	for cmd, want := range map[string]string{
		"postgres: order_svc order_db 127.0.0.1(40112) idle":                    "order_svc@order_db",
		"postgres: postgres test_1034ded6b705 127.0.0.1(5) CREATE DATABASE":     "postgres@test_*",
		"postgres: walsender debezium_order 127.0.0.1(40100) START_REPLICATION": "walsender",
		"postgres: checkpointer":                   "checkpointer",
		"postgres: background writer":              "background writer",
		"postgres: autovacuum worker order_db":     "autovacuum worker",
		"postgres: logical replication launcher":   "logical replication",
		"/usr/lib/postgresql/15/bin/postgres -D x": "other",
	} {
		if got := PostgresRole(cmd); got != want {
			t.Errorf("PostgresRole(%q) = %q, want %q", cmd, got, want)
		}
	}
}
