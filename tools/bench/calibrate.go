package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CalibrationWork is the fixed CPU work one calibration core does: SHA-256 over this many bytes
// (a 1 MiB buffer hashed again and again). It is the same on every run and every machine, so its
// time says how fast the machine is, apart from the stack.
const CalibrationWork = 1 << 30

// Speed is how fast the machine was at one moment: the time of the fixed work on one core and on
// two cores at once, and how fast its disk makes a write durable.
type Speed struct {
	// When says at which point of the run it was measured ("start", "end").
	When string
	At   time.Time
	// SingleCore is the time of CalibrationWork on one goroutine.
	SingleCore time.Duration
	// TwoCore is the time of CalibrationWork on each of two goroutines at once: as SingleCore on
	// a machine with two free cores, up to twice it when only one core is free.
	TwoCore time.Duration
	// FsyncPerSec is pg_test_fsync's fdatasync rate for one 8 kB write (PostgreSQL's default
	// wal_sync_method on Linux), 0 when it could not be measured; FsyncErr says why.
	FsyncPerSec float64
	FsyncErr    string
	// FsyncDir is where the fsync test wrote.
	FsyncDir string
	// RoundTrip is the median time of one 1-byte request and answer over a loopback TCP connection
	// between two goroutines (RoundTrips of them): two wakeups of a blocked reader, the unit of
	// the stack's work (a statement to PostgreSQL, a fetch from Kafka). Pure CPU work (SingleCore)
	// can stay the same while this doubles; 0 when it could not be measured.
	RoundTrip time.Duration
}

// RoundTrips is how many loopback round trips one calibration times.
const RoundTrips = 20000

// MeasureSpeed runs the CPU calibration and, when fsyncDir is not empty, pg_test_fsync for
// fsyncSecs seconds per method in a temporary file there.
func MeasureSpeed(ctx context.Context, when, fsyncDir string, fsyncSecs int) Speed {
	s := Speed{When: when, At: time.Now(), SingleCore: calibrate(1), TwoCore: calibrate(2), FsyncDir: fsyncDir}
	s.RoundTrip, _ = loopbackRoundTrip(RoundTrips)
	if fsyncDir != "" {
		var err error
		if s.FsyncPerSec, err = FsyncRate(ctx, fsyncDir, fsyncSecs); err != nil {
			s.FsyncErr = err.Error()
		}
	}
	return s
}

// calibrate runs CalibrationWork on each of n goroutines at once and returns the wall time.
func calibrate(n int) time.Duration {
	buf := bytes.Repeat([]byte("calibrate"), (1<<20)/9+1)[:1<<20]
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := sha256.New()
			for done := 0; done < CalibrationWork; done += len(buf) {
				h.Write(buf)
			}
			_ = h.Sum(nil)
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// loopbackRoundTrip times n round trips of one byte over a loopback TCP connection (an echo
// goroutine on the other end) and returns the median; each batch of 100 is timed as one.
func loopbackRoundTrip(n int) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	const batch = 100
	b := []byte{1}
	var times []time.Duration
	for range max(n/batch, 1) {
		start := time.Now()
		for range batch {
			if _, err := c.Write(b); err != nil {
				return 0, err
			}
			if _, err := io.ReadFull(c, b); err != nil {
				return 0, err
			}
		}
		times = append(times, time.Since(start)/batch)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// String is the speed in one line.
func (s Speed) String() string {
	out := fmt.Sprintf("CPU calibration (SHA-256 of %d MiB): one core %.0f ms, two cores at once %.0f ms each (%.2f× the one-core time; 1.00 = two free cores)",
		CalibrationWork>>20, ms(s.SingleCore), ms(s.TwoCore), s.TwoCore.Seconds()/s.SingleCore.Seconds())
	if s.RoundTrip > 0 {
		out += fmt.Sprintf("; loopback TCP round trip: %.1f µs (median of %d)", float64(s.RoundTrip)/float64(time.Microsecond), RoundTrips)
	}
	switch {
	case s.FsyncPerSec > 0:
		out += fmt.Sprintf("; pg_test_fsync: %.0f fdatasync/s (one 8 kB write, in %s)", s.FsyncPerSec, s.FsyncDir)
	case s.FsyncErr != "":
		out += "; pg_test_fsync: not measured (" + s.FsyncErr + ")"
	}
	return out
}

// fdatasyncLine is pg_test_fsync's line for fdatasync in its first section (one 8 kB write):
// "        fdatasync                          1234.567 ops/sec     810 usecs/op".
var fdatasyncLine = regexp.MustCompile(`^\s+fdatasync\s+([0-9.]+) ops/sec`)

// FsyncRate runs PostgreSQL's pg_test_fsync with a file in dir for secs seconds per method and
// returns the fdatasync rate of its first section (one 8 kB write per sync).
func FsyncRate(ctx context.Context, dir string, secs int) (float64, error) {
	bin, err := pgTestFsync()
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(dir, "pg_test_fsync-*.tmp")
	if err != nil {
		return 0, fmt.Errorf("pg_test_fsync: %w", err)
	}
	name := f.Name()
	f.Close()
	defer os.Remove(name)
	out, err := exec.CommandContext(ctx, bin, "-s", strconv.Itoa(secs), "-f", name).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", bin, err, lastLine(out))
	}
	return ParseFsync(out)
}

// ParseFsync reads the first fdatasync rate from pg_test_fsync's output.
func ParseFsync(out []byte) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := fdatasyncLine.FindStringSubmatch(sc.Text()); m != nil {
			return strconv.ParseFloat(m[1], 64)
		}
	}
	return 0, fmt.Errorf("pg_test_fsync: no fdatasync line in its output: %s", lastLine(out))
}

// pgTestFsync finds the pg_test_fsync binary: on PATH, else in the Debian server package's bindir.
func pgTestFsync() (string, error) {
	if p, err := exec.LookPath("pg_test_fsync"); err == nil {
		return p, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "pg_test_fsync")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_test_fsync")
	if len(ms) > 0 {
		return ms[len(ms)-1], nil
	}
	return "", fmt.Errorf("pg_test_fsync not found (Debian: postgresql's server package)")
}

// lastLine is the last non-empty line of out.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
