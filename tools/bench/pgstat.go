package bench

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PGCounters is what PostgreSQL's statistics views count at one instant, cluster-wide: counts
// (calls, rows, commits, rows read by sequential scans), which the neighbours' load on the CPU
// cannot inflate, and the statements' execution time, which it can.
type PGCounters struct {
	// Statements maps database and query id to pg_stat_statements' counters (top-level
	// statements; nil when the extension is not loaded: shared_preload_libraries).
	Statements map[StatementKey]StatementCounters
	// Commits maps each database to pg_stat_database.xact_commit.
	Commits map[string]int64
	// SeqRead maps each service database's table ("order_db.orders") to its sequential scans
	// and the rows they read (pg_stat_user_tables.seq_scan, seq_tup_read).
	SeqRead map[string][2]int64
	// WAL is the cluster's WAL position in bytes (pg_current_wal_lsn): what every WAL sender
	// has to decode, whichever database wrote it.
	WAL int64
}

// StatementKey is one statement of one database.
type StatementKey struct {
	DB      string
	QueryID int64
}

// StatementCounters are one statement's pg_stat_statements counters.
type StatementCounters struct {
	Query string
	Calls int64
	Rows  int64
	// Exec is the total execution time (total_exec_time).
	Exec time.Duration
	// WAL is the WAL the statement wrote, in bytes (wal_bytes).
	WAL int64
}

// PGSampler reads PGCounters through the superuser's connection, and each service database's
// tables through a connection to it.
type PGSampler struct {
	admin *sql.DB
	url   string
	dbs   map[string]*sql.DB
	// statements is false when pg_stat_statements is not loaded.
	statements bool
}

// NewPGSampler makes the pg_stat_statements view in the admin connection's database when the
// library is loaded (an older cluster without it in shared_preload_libraries has no statement
// figures; the rest still works), and opens each service database (*_db) of the cluster.
func NewPGSampler(ctx context.Context, admin *sql.DB, adminURL string) (*PGSampler, error) {
	s := &PGSampler{admin: admin, url: adminURL, dbs: map[string]*sql.DB{}}
	var libs string
	if err := admin.QueryRowContext(ctx, `SHOW shared_preload_libraries`).Scan(&libs); err != nil {
		return nil, fmt.Errorf("pg stats: %w", err)
	}
	if strings.Contains(libs, "pg_stat_statements") {
		if _, err := admin.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
			return nil, fmt.Errorf("pg stats: create extension pg_stat_statements: %w", err)
		}
		s.statements = true
	}
	rows, err := admin.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname LIKE '%\_db' AND datname NOT LIKE 'bench\_%' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("pg stats: list databases: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		u, err := withDatabase(adminURL, n)
		if err != nil {
			s.Close()
			return nil, err
		}
		db, err := sql.Open("postgres", u)
		if err != nil {
			s.Close()
			return nil, err
		}
		db.SetMaxOpenConns(1)
		s.dbs[n] = db
	}
	return s, nil
}

// Statements is true when the statement counters are read.
func (s *PGSampler) Statements() bool { return s.statements }

// Close closes the service database connections (not the admin's).
func (s *PGSampler) Close() {
	for _, db := range s.dbs {
		db.Close()
	}
}

// Sample reads the counters once.
func (s *PGSampler) Sample(ctx context.Context) (PGCounters, error) {
	c := PGCounters{Commits: map[string]int64{}, SeqRead: map[string][2]int64{}}
	rows, err := s.admin.QueryContext(ctx, `SELECT datname, xact_commit FROM pg_stat_database WHERE datname IS NOT NULL`)
	if err != nil {
		return c, fmt.Errorf("pg_stat_database: %w", err)
	}
	for rows.Next() {
		var db string
		var n int64
		if err := rows.Scan(&db, &n); err != nil {
			rows.Close()
			return c, err
		}
		c.Commits[db] = n
	}
	rows.Close()
	if err := s.admin.QueryRowContext(ctx, `SELECT (pg_current_wal_lsn() - '0/0')::bigint`).Scan(&c.WAL); err != nil {
		return c, fmt.Errorf("wal position: %w", err)
	}
	if s.statements {
		c.Statements = map[StatementKey]StatementCounters{}
		rows, err := s.admin.QueryContext(ctx, `
			SELECT d.datname, s.queryid, s.query, s.calls, s.rows, s.total_exec_time, s.wal_bytes::bigint
			FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
			WHERE s.queryid IS NOT NULL`)
		if err != nil {
			return c, fmt.Errorf("pg_stat_statements: %w", err)
		}
		for rows.Next() {
			var k StatementKey
			var v StatementCounters
			var ms float64
			if err := rows.Scan(&k.DB, &k.QueryID, &v.Query, &v.Calls, &v.Rows, &ms, &v.WAL); err != nil {
				rows.Close()
				return c, err
			}
			v.Exec = time.Duration(ms * float64(time.Millisecond))
			old := c.Statements[k] // the same statement of several users: one line
			v.Calls, v.Rows, v.Exec, v.WAL = v.Calls+old.Calls, v.Rows+old.Rows, v.Exec+old.Exec, v.WAL+old.WAL
			c.Statements[k] = v
		}
		rows.Close()
	}
	for name, db := range s.dbs {
		rows, err := db.QueryContext(ctx, `SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables`)
		if err != nil {
			return c, fmt.Errorf("pg_stat_user_tables of %s: %w", name, err)
		}
		for rows.Next() {
			var t string
			var scans, read int64
			if err := rows.Scan(&t, &scans, &read); err != nil {
				rows.Close()
				return c, err
			}
			c.SeqRead[name+"."+t] = [2]int64{scans, read}
		}
		rows.Close()
	}
	return c, nil
}

// PGWindow is what the counters moved by in one window.
type PGWindow struct {
	Statements map[StatementKey]StatementCounters
	Commits    map[string]int64
	SeqRead    map[string][2]int64
	// WAL is the bytes of WAL the cluster wrote in the window.
	WAL int64
}

// NewPGWindow is the difference between two samples (a statement evicted from
// pg_stat_statements between them, or reset, is left out).
func NewPGWindow(from, to PGCounters) *PGWindow {
	w := &PGWindow{Commits: map[string]int64{}, SeqRead: map[string][2]int64{}}
	if from.Statements != nil && to.Statements != nil {
		w.Statements = map[StatementKey]StatementCounters{}
	}
	for k, b := range to.Statements {
		if w.Statements == nil {
			break
		}
		a := from.Statements[k]
		if b.Calls < a.Calls || b.Calls == a.Calls {
			continue
		}
		w.Statements[k] = StatementCounters{Query: b.Query, Calls: b.Calls - a.Calls, Rows: b.Rows - a.Rows, Exec: b.Exec - a.Exec, WAL: b.WAL - a.WAL}
	}
	w.WAL = to.WAL - from.WAL
	for db, n := range to.Commits {
		if d := n - from.Commits[db]; d > 0 {
			w.Commits[db] = d
		}
	}
	for t, b := range to.SeqRead {
		a := from.SeqRead[t]
		if b[0] > a[0] {
			w.SeqRead[t] = [2]int64{b[0] - a[0], b[1] - a[1]}
		}
	}
	return w
}

// pgMarkdown renders the counters of the cost model's windows: per database, commits, statement
// calls, rows and execution time per saga (the idle column per second); the tables read by
// sequential scans; and the top statements of the reference window by execution time per saga.
func (m *CostModel) pgMarkdown() string {
	windows := []CPUWindow{}
	if m.Idle != nil && m.Idle.PG != nil {
		windows = append(windows, *m.Idle)
	}
	for _, w := range m.Windows {
		if w.PG != nil {
			windows = append(windows, w)
		}
	}
	if len(windows) == 0 {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	per := func(w CPUWindow) float64 {
		if w.Sagas == 0 {
			return w.Duration.Seconds()
		}
		return float64(w.Sagas)
	}
	head := func(first string) {
		p("| %s |", first)
		for _, w := range windows {
			if w.Sagas == 0 {
				p(" %s, per s |", w.Name)
			} else {
				p(" %s |", w.Name)
			}
		}
		p("\n|---|%s\n", strings.Repeat("---:|", len(windows)))
	}
	p("\n### PostgreSQL's counters per saga\n\n")
	p("Counted by PostgreSQL itself (pg_stat_database, pg_stat_user_tables and, when the library is loaded, pg_stat_statements: top-level statements), read at each window's start and end. ")
	p("Counts do not grow when the machine is slower; the execution time does. They count every client of the cluster: a test or another tool using the stack's PostgreSQL meanwhile shows up in its own database (test_*) or in postgres.\n\n")
	dbs := map[string]bool{}
	for _, w := range windows {
		for db := range w.PG.Commits {
			dbs[db] = true
		}
		for k := range w.PG.Statements {
			dbs[k.DB] = true
		}
	}
	names := make([]string, 0, len(dbs))
	for db := range dbs {
		names = append(names, db)
	}
	slices.Sort(names)
	// fold: every test_* database is one line.
	label := func(db string) string {
		if strings.HasPrefix(db, "test_") {
			return "test_*"
		}
		return db
	}
	var labels []string
	for _, db := range names {
		if l := label(db); !slices.Contains(labels, l) {
			labels = append(labels, l)
		}
	}
	head("database: commits / statement calls / rows / exec ms / WAL kB")
	for _, l := range labels {
		p("| %s |", l)
		for _, w := range windows {
			var commits, calls, rows int64
			var exec time.Duration
			var wal int64
			for db, n := range w.PG.Commits {
				if label(db) == l {
					commits += n
				}
			}
			for k, v := range w.PG.Statements {
				if label(k.DB) == l {
					calls, rows, exec, wal = calls+v.Calls, rows+v.Rows, exec+v.Exec, wal+v.WAL
				}
			}
			d := per(w)
			if w.PG.Statements == nil { // pg_stat_statements not loaded: commits only
				p(" %.1f / – / – / – / – |", float64(commits)/d)
				continue
			}
			p(" %.1f / %.1f / %.1f / %.2f / %.1f |", float64(commits)/d, float64(calls)/d, float64(rows)/d, exec.Seconds()*1000/d, float64(wal)/1024/d)
		}
		p("\n")
	}
	p("| **WAL written, kB** (the cluster's; every WAL sender decodes all of it) |")
	for _, w := range windows {
		p(" %.1f |", float64(w.PG.WAL)/1024/per(w))
	}
	p("\n")
	tables := map[string]bool{}
	for _, w := range windows {
		for t := range w.PG.SeqRead {
			tables[t] = true
		}
	}
	if len(tables) > 0 {
		ts := make([]string, 0, len(tables))
		for t := range tables {
			ts = append(ts, t)
		}
		slices.Sort(ts)
		p("\nSequential scans: scans / rows read, per saga (a figure that grows with the table is a scan on the saga's path):\n\n")
		head("table")
		for _, t := range ts {
			p("| %s |", t)
			for _, w := range windows {
				v := w.PG.SeqRead[t]
				d := per(w)
				p(" %.2f / %.0f |", float64(v[0])/d, float64(v[1])/d)
			}
			p("\n")
		}
	}
	ref := windows[len(windows)-1]
	if m.Ref >= 0 && m.Ref < len(m.Windows) && m.Windows[m.Ref].PG != nil {
		ref = m.Windows[m.Ref]
	}
	if len(ref.PG.Statements) > 0 {
		type line struct {
			k StatementKey
			v StatementCounters
		}
		var ls []line
		for k, v := range ref.PG.Statements {
			ls = append(ls, line{k, v})
		}
		slices.SortFunc(ls, func(a, b line) int { return int(b.v.Exec - a.v.Exec) })
		d := per(ref)
		p("\nThe statements of the %s window by execution time (%s):\n\n", ref.Name, map[bool]string{true: "per second", false: "per saga"}[ref.Sagas == 0])
		p("| database | calls | rows | exec ms | statement |\n|---|---:|---:|---:|---|\n")
		for i, l := range ls {
			if i == 25 {
				break
			}
			q := strings.Join(strings.Fields(l.v.Query), " ")
			if len(q) > 160 { // its start and its end (where a FOR UPDATE or a LIMIT is)
				q = q[:110] + " … " + q[len(q)-50:]
			}
			q = strings.ReplaceAll(q, "|", "\\|")
			p("| %s | %.2f | %.2f | %.3f | `%s` |\n", l.k.DB, float64(l.v.Calls)/d, float64(l.v.Rows)/d, l.v.Exec.Seconds()*1000/d, q)
		}
	}
	return b.String()
}
