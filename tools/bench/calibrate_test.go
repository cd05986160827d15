package bench

import (
	"testing"
	"time"
)

func TestParseFsync(t *testing.T) {
	out := []byte(`1 second per test
O_DIRECT supported on this platform for open_datasync and open_sync.

Compare file sync methods using one 8kB write:
(in wal_sync_method preference order, except fdatasync is Linux's default)
        open_datasync                      3637.528 ops/sec     275 usecs/op
        fdatasync                          2149.742 ops/sec     465 usecs/op

Compare file sync methods using two 8kB writes:
        fdatasync                          3224.471 ops/sec     310 usecs/op
`)
	got, err := ParseFsync(out)
	if err != nil || got != 2149.742 {
		t.Fatalf("ParseFsync = %v, %v; want 2149.742 (the first section's fdatasync)", got, err)
	}
	if _, err := ParseFsync([]byte("could not open output file: Permission denied\n")); err == nil {
		t.Fatal("ParseFsync of an error message: want an error")
	}
}

func TestCalibrateDoesTheWork(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 1 GiB three times")
	}
	one := calibrate(1)
	two := calibrate(2)
	// Two goroutines do twice the work: on any machine that takes longer than none, and at most
	// about twice one core's time plus scheduling noise.
	if one <= 0 || two <= 0 || two > 4*one {
		t.Fatalf("calibrate: one core %s, two cores %s", one, two)
	}
}

func TestLoopbackRoundTrip(t *testing.T) {
	d, err := loopbackRoundTrip(2000)
	// A loopback round trip takes microseconds anywhere; a second would be a broken measurement.
	if err != nil || d <= 0 || d > time.Second {
		t.Fatalf("loopbackRoundTrip = %s, %v", d, err)
	}
	t.Logf("loopback round trip: %s", d)
}
