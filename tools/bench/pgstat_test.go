package bench

import (
	"strings"
	"testing"
	"time"
)

func TestPGWindowAndMarkdown(t *testing.T) {
	k := StatementKey{DB: "order_db", QueryID: 7}
	from := PGCounters{
		Statements: map[StatementKey]StatementCounters{k: {Query: "SELECT 1", Calls: 10, Rows: 10, Exec: time.Millisecond}},
		Commits:    map[string]int64{"order_db": 100, "test_ab": 5},
		SeqRead:    map[string][2]int64{"order_db.orders": {1, 50}, "order_db.prices": {3, 9}},
	}
	to := PGCounters{
		Statements: map[StatementKey]StatementCounters{k: {Query: "SELECT 1", Calls: 30, Rows: 50, Exec: 21 * time.Millisecond},
			{DB: "order_db", QueryID: 8}: {Query: "SELECT 2", Calls: 4, Rows: 4}},
		Commits: map[string]int64{"order_db": 140, "test_ab": 25, "test_cd": 3},
		SeqRead: map[string][2]int64{"order_db.orders": {11, 5050}, "order_db.prices": {3, 9}},
		WAL:     102400,
	}
	w := NewPGWindow(from, to)
	if got := w.Statements[k]; got.Calls != 20 || got.Rows != 40 || got.Exec != 20*time.Millisecond {
		t.Fatalf("statement delta %+v", got)
	}
	if w.Commits["order_db"] != 40 || w.Commits["test_cd"] != 3 {
		t.Fatalf("commits %v", w.Commits)
	}
	if _, ok := w.SeqRead["order_db.prices"]; ok || w.SeqRead["order_db.orders"] != [2]int64{10, 5000} {
		t.Fatalf("seq reads %v", w.SeqRead)
	}
	if NewPGWindow(PGCounters{}, PGCounters{}).Statements != nil {
		t.Error("statements without pg_stat_statements")
	}
	m := &CostModel{Ref: 0, Windows: []CPUWindow{{Name: "25/s", Sagas: 10, Duration: time.Second, PG: w}}}
	md := m.pgMarkdown()
	for _, want := range []string{
		"| order_db | 4.0 / 2.4 / 4.4 / 2.00 / 0.0 |", // 40 commits, 24 calls, 44 rows, 20 ms over 10 sagas
		"| test_* | 2.3 / 0.0 / 0.0 / 0.00 / 0.0 |",
		"| **WAL written, kB** (the cluster's; every WAL sender decodes all of it) | 10.0 |", // both test databases on one line
		"| order_db.orders | 1.00 / 500 |",
		"| order_db | 2.00 | 4.00 | 2.000 | `SELECT 1` |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
