package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// jfrSample is one sample as `jfr print --events jdk.ExecutionSample` writes it (JDK 17), its
// stack top first; "..." marks a truncated stack.
func jfrSample(thread string, id int, frames ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "jdk.ExecutionSample {\n  startTime = 11:57:15.936\n  sampledThread = %q (javaThreadId = %d)\n", thread, id)
	b.WriteString("  state = \"STATE_RUNNABLE\"\n  stackTrace = [\n")
	for _, f := range frames {
		b.WriteString("    " + f + "\n")
	}
	b.WriteString("  ]\n}\n\n")
	return b.String()
}

// jfrText is three samples.
var jfrText = jfrSample("task-thread-inventory-outbox-0", 52,
	"io.debezium.util.Threads$2.remaining() line: 112",
	"io.debezium.connector.base.ChangeEventQueue.poll() line: 299",
	"io.debezium.connector.base.ChangeEventQueue.poll() line: 284",
	"org.apache.kafka.connect.runtime.WorkerTask.run() line: 298") +
	jfrSample("task-thread-payment-outbox-0", 51,
		"io.debezium.util.Threads$2.remaining() line: 112",
		"io.debezium.connector.base.ChangeEventQueue.poll() line: 299",
		"...") +
	jfrSample("kafka-producer-network-thread | connector-producer-order-outbox-0", 60,
		"java.lang.StringBuilder.setLength(int) line: 801",
		"org.apache.kafka.connect.runtime.WorkerTask.run() line: 298")

func TestParseJFRSamples(t *testing.T) {
	s, err := ParseJFRSamples(strings.NewReader(jfrText))
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 3 || s.Truncated != 1 {
		t.Errorf("total %d, truncated %d; want 3, 1", s.Total, s.Truncated)
	}
	want := func(name string, m map[string]int, key string, n int) {
		t.Helper()
		if m[key] != n {
			t.Errorf("%s[%q] = %d, want %d (%v)", name, key, m[key], n, m)
		}
	}
	want("flat", s.Flat, "io.debezium.util.Threads$2.remaining()", 2)
	want("flat", s.Flat, "java.lang.StringBuilder.setLength(int)", 1)
	want("flat", s.Flat, "io.debezium.connector.base.ChangeEventQueue.poll()", 0)
	// A recursive method counts once per sample.
	want("cum", s.Cum, "io.debezium.connector.base.ChangeEventQueue.poll()", 2)
	want("cum", s.Cum, "org.apache.kafka.connect.runtime.WorkerTask.run()", 2)
	// Digits fold, so a pool is one line; the connectors stay apart.
	want("threads", s.Threads, "task-thread-inventory-outbox-N", 1)
	want("threads", s.Threads, "kafka-producer-network-thread | connector-producer-order-outbox-N", 1)

	md := s.Markdown(2)
	containsAll(t, "markdown", md,
		"3 execution samples",
		"1 of them with stacks deeper than 64 frames",
		"| `io.debezium.util.Threads$2.remaining()` | 2 | 66.7 |",
		// Ties are broken by name; only the top 2 are listed.
		"| `io.debezium.connector.base.ChangeEventQueue.poll()` | 2 | 66.7 |\n| `io.debezium.util.Threads$2.remaining()` | 2 | 66.7 |\n\n",
		// A | in a cell is escaped.
		"| `kafka-producer-network-thread \\| connector-producer-order-outbox-N` | 1 | 33.3 |")
	if strings.Contains(md, "WorkerTask") {
		t.Errorf("the top 2 list a third method:\n%s", md)
	}
}

func TestSummarizePprof(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	spin(300 * time.Millisecond)
	pprof.StopCPUProfile()
	f.Close()
	sum, err := SummarizePprof(context.Background(), path, 5)
	if err != nil {
		t.Fatal(err)
	}
	containsAll(t, "summary", sum, "Top 5 by flat time:", "Top 5 by cumulative time:", "Duration:", "flat%", "spin")
	if strings.Contains(sum, "Build ID") {
		t.Errorf("summary keeps pprof's header:\n%s", sum)
	}
	ps := []Profile{{Component: "order", Kind: "pprof", File: path}, {Component: "postgres", Err: "not profiled"},
		{Component: "payment", Kind: "pprof", File: filepath.Join(t.TempDir(), "missing.pb.gz")}}
	Summarize(context.Background(), ps, 5)
	if ps[0].Err != "" || !strings.Contains(ps[0].Summary, "spin") {
		t.Errorf("order: %q, %q", ps[0].Err, ps[0].Summary)
	}
	if ps[1].Summary != "" || ps[2].Err == "" {
		t.Errorf("not profiled: %+v; missing file: %+v", ps[1], ps[2])
	}
}

// spin burns CPU for d.
func spin(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range 10000 {
			n += i * i
		}
	}
	return n
}

func TestProfilesMarkdown(t *testing.T) {
	md := ProfilesMarkdown(time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), "30 s at 25 orders/s.", "profiles", []Profile{
		{Component: "connect", Kind: "jfr", Summary: "JFR SUMMARY\n"},
		{Component: "order", Kind: "pprof", Summary: "PPROF SUMMARY\n"},
		{Component: "payment", Kind: "pprof", Err: "CPU profile: 401"},
		{Component: "postgres", Err: "not profiled: neither a JVM nor a Go program"},
	})
	containsAll(t, "PROFILES.md", md,
		"# Profiles under load — 2026-01-02 03:04 UTC", "30 s at 25 orders/s.",
		"## connect (JFR)\n\nJFR SUMMARY", "## order (pprof, CPU)\n\nPPROF SUMMARY",
		"## payment (pprof)\n\nNo summary: CPU profile: 401", "## postgres\n\nnot profiled")
}

// containsAll fails t for every one of wants that text (named what) lacks.
func containsAll(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// TestJFRRecordsNoEnvironment: a profile never records the JVM's environment (its secrets) or its
// system properties.
func TestJFRRecordsNoEnvironment(t *testing.T) {
	args := strings.Join(jfrStartArgs(30*time.Second), " ")
	for _, off := range []string{"jdk.InitialEnvironmentVariable#enabled=false", "jdk.InitialSystemProperty#enabled=false"} {
		if !strings.Contains(args, off) {
			t.Errorf("JFR.start %s: want %s", args, off)
		}
	}
}
