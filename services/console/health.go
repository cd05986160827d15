package console

import (
	"fmt"
	"strings"
	"time"
)

// Connector is a Kafka Connect connector and its tasks as Connect's REST API reports them.
type Connector struct {
	Name  string
	State string // RUNNING, PAUSED, STOPPED, FAILED, UNASSIGNED, RESTARTING
	Trace string
	Tasks []Task
}

// Task is one task of a connector.
type Task struct {
	ID    int
	State string
	Trace string
}

// Slot is a PostgreSQL logical replication slot (pg_replication_slots).
type Slot struct {
	Name     string
	Database string
	Active   bool
	// WALStatus is reserved, extended, unreserved or lost.
	WALStatus string
	// RetainedBytes is the WAL the slot holds back (current LSN − restart_lsn).
	RetainedBytes int64
	// LagBytes is what the slot's consumer has not confirmed yet (current LSN −
	// confirmed_flush_lsn).
	LagBytes int64
}

// PartitionLag is how far a consumer group is behind on one partition.
type PartitionLag struct {
	Group     string
	Topic     string
	Partition int32
	// Committed is the group's committed offset (-1: none yet); End is the partition's end.
	Committed, End int64
	// Records is End − Committed (0 when the group has committed nothing and the partition is
	// empty).
	Records int64
	// Behind is the age of the oldest record the group has not consumed (0 when it is caught up
	// or the record could not be read).
	Behind time.Duration
	// Trend holds the last samples of Records, oldest first.
	Trend []int64
}

// Health is the pipeline's state as the console saw it at At.
type Health struct {
	At         time.Time
	Connectors []Connector
	Slots      []Slot
	Lags       []PartitionLag
	// Unreadable lists the surfaces that could not be read, in words (a problem).
	Unreadable []string
	// Unconfigured lists the surfaces the console was not given, in words (a note).
	Unconfigured []string
}

// Thresholds say when lag is a problem.
type Thresholds struct {
	// LagRecords and LagBehind: a partition further behind than either is red.
	LagRecords int64
	LagBehind  time.Duration
	// RetainedBytes: a slot holding more WAL than this is red.
	RetainedBytes int64
}

// DefaultThresholds are the console's defaults: 1,000 records or 30 s behind, 1 GiB of WAL.
var DefaultThresholds = Thresholds{LagRecords: 1000, LagBehind: 30 * time.Second, RetainedBytes: 1 << 30}

// Problem is one thing wrong with the pipeline, said in words, and what it concerns.
type Problem struct {
	// Subject is the connector, slot or group it is about.
	Subject string
	Cause   string
}

// Problems judges h: what is wrong, each in words an operator acts on; none when all is well.
func (h Health) Problems(th Thresholds) []Problem {
	var out []Problem
	for _, u := range h.Unreadable {
		out = append(out, Problem{Subject: "console", Cause: u})
	}
	for _, c := range h.Connectors {
		if c.State != "RUNNING" {
			out = append(out, Problem{Subject: c.Name, Cause: fmt.Sprintf("connector %s is %s: %s", c.Name, c.State, stateMeans(c.State, c.Trace))})
		}
		if len(c.Tasks) == 0 && c.State == "RUNNING" {
			out = append(out, Problem{Subject: c.Name, Cause: fmt.Sprintf("connector %s has no task: nothing streams its outbox", c.Name)})
		}
		for _, t := range c.Tasks {
			if t.State != "RUNNING" && t.State != c.State {
				out = append(out, Problem{Subject: c.Name, Cause: fmt.Sprintf("task %d of %s is %s: %s", t.ID, c.Name, t.State, stateMeans(t.State, t.Trace))})
			}
		}
	}
	for _, s := range h.Slots {
		switch {
		case s.WALStatus == "lost":
			out = append(out, Problem{Subject: s.Name, Cause: fmt.Sprintf("replication slot %s lost WAL it needed: its connector must be re-snapshotted", s.Name)})
		case !s.Active:
			out = append(out, Problem{Subject: s.Name, Cause: fmt.Sprintf("replication slot %s is not active: no connector reads %s, and it holds %s of WAL", s.Name, s.Database, Bytes(s.RetainedBytes))})
		case s.WALStatus == "unreserved":
			out = append(out, Problem{Subject: s.Name, Cause: fmt.Sprintf("replication slot %s is about to lose WAL (wal_status unreserved)", s.Name)})
		}
		if s.RetainedBytes > th.RetainedBytes {
			out = append(out, Problem{Subject: s.Name, Cause: fmt.Sprintf("replication slot %s holds %s of WAL (more than %s)", s.Name, Bytes(s.RetainedBytes), Bytes(th.RetainedBytes))})
		}
	}
	for _, l := range h.Lags {
		if l.Records > th.LagRecords || l.Behind > th.LagBehind {
			out = append(out, Problem{Subject: l.Group, Cause: fmt.Sprintf("consumer group %s is %d records (%s) behind on %s/%d",
				l.Group, l.Records, Duration(l.Behind), l.Topic, l.Partition)})
		}
	}
	return out
}

// stateMeans says what a connector's or task's state means for the pipeline.
func stateMeans(state, trace string) string {
	switch state {
	case "PAUSED":
		return "someone paused it; its database's events wait in the WAL until it is resumed"
	case "STOPPED":
		return "someone stopped it; its database's events wait in the WAL until it is resumed"
	case "FAILED":
		if line := firstLine(trace); line != "" {
			return "it failed with " + line
		}
		return "it failed; restart it"
	case "UNASSIGNED":
		return "no worker runs it"
	case "RESTARTING":
		return "it is restarting"
	}
	return "its events do not reach Kafka"
}

// firstLine returns the first line of a stack trace.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// Bytes writes a size for people (KiB, MiB, GiB).
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Duration writes a duration for people: 350ms, 4.2s, 3m10s, 2h5m.
func Duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute && d%time.Second == 0:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// Ago writes how long before now t was, for people: "4.2s ago".
func Ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return Duration(now.Sub(t)) + " ago"
}

// Sparkline draws samples as a line of block characters, lowest to highest.
func Sparkline(samples []int64) string {
	const bars = "▁▂▃▄▅▆▇█"
	blocks := []rune(bars)
	var lo, hi int64
	for i, s := range samples {
		if i == 0 || s < lo {
			lo = s
		}
		if i == 0 || s > hi {
			hi = s
		}
	}
	var b strings.Builder
	for _, s := range samples {
		i := 0
		if hi > lo {
			i = int((s - lo) * int64(len(blocks)-1) / (hi - lo))
		}
		b.WriteRune(blocks[i])
	}
	return b.String()
}

// Direction says where a trend goes: "rising", "falling" or "steady".
func Direction(samples []int64) string {
	if len(samples) < 2 {
		return "steady"
	}
	first, last := samples[0], samples[len(samples)-1]
	switch {
	case last > first:
		return "rising"
	case last < first:
		return "falling"
	}
	return "steady"
}
