package bench

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	msgpg "outboxsaga.dev/messaging/postgres"
)

// Synthetic rows: every id the preload writes is a UUID in one range that no v4 UUID a service
// draws falls into but by a 2^-44 chance, ffffffff-ffff-4fff-8KKK-IIIIIIIIIIII with KKK the kind
// of id (an order, an event type) and I the saga's number, so they are told apart and removed by
// range. Dead letters carry partition -1 besides.
const (
	syntheticLow  = "ffffffff-ffff-4fff-8000-000000000000"
	syntheticHigh = "ffffffff-ffff-4fff-8fff-ffffffffffff"
)

// synthID is the SQL of the synthetic UUID (as text) of kind and saga number i (SQL expressions).
func synthID(kind, i string) string {
	return fmt.Sprintf("format('ffffffff-ffff-4fff-8%%s-%%s', lpad(to_hex(%s), 3, '0'), lpad(to_hex(%s), 12, '0'))", kind, i)
}

// Every preload statement starts with params, the CTE of its parameters: $1 and $2 the first
// and last saga of the batch, $3 the number of sagas, $4 when the newest started, $5 the span in
// seconds over which they started (saga n at $4, saga 0 would be $5 before); series is saga g
// of the batch; at is when saga g started.
const (
	params = `WITH p AS (SELECT $1::bigint AS first, $2::bigint AS last, $3::bigint AS n, $4::timestamptz AS end_at, $5::float8 AS span) `
	series = `p, generate_series(p.first, p.last) g`
	at     = `(p.end_at - make_interval(secs => p.span * (p.n - g)::float8 / p.n))`
)

// Kinds of synthetic ids.
const (
	kindOrder      = 0x000
	kindDelivery   = 0x001
	kindDeadLetter = 0x020
)

// sagaEvent is one event of a synthetic saga: its id kind, type, topic and how long after the
// saga's start it happened.
type sagaEvent struct {
	kind  int
	typ   string
	topic string
	after time.Duration
}

// The happy path's events, each with its own id kind.
var (
	evOrderCreated      = sagaEvent{0x010, "OrderCreated", "order-events", 0}
	evStockReserved     = sagaEvent{0x011, "StockReserved", "inventory-events", 40 * time.Millisecond}
	evPaymentAuthorized = sagaEvent{0x012, "PaymentAuthorized", "payment-events", 80 * time.Millisecond}
	evOrderCompleted    = sagaEvent{0x013, "OrderCompleted", "order-events", 120 * time.Millisecond}
	evStockCommitted    = sagaEvent{0x014, "StockCommitted", "inventory-events", 160 * time.Millisecond}
	evDeliveryScheduled = sagaEvent{0x015, "DeliveryScheduled", "shipping-events", 200 * time.Millisecond}
	evDeliveryShipped   = sagaEvent{0x016, "DeliveryShipped", "shipping-events", 2200 * time.Millisecond}
	evDeliveryDelivered = sagaEvent{0x017, "DeliveryDelivered", "shipping-events", 4200 * time.Millisecond}
)

// eventsSQL is a VALUES list of events (kind, type, topic, after in ms) to join with the series.
func eventsSQL(evs []sagaEvent) string {
	rows := make([]string, len(evs))
	for i, e := range evs {
		rows[i] = fmt.Sprintf("(%d, '%s', '%s', %d)", e.kind, e.typ, e.topic, e.after.Milliseconds())
	}
	return "(VALUES " + strings.Join(rows, ", ") + ") e(kind, type, topic, after_ms)"
}

// deadLetterEvery is how many sagas there are per synthetic dead letter, in each database.
const deadLetterEvery = 100

// preloadTable is one table the preload fills.
type preloadTable struct {
	name string
	// insert adds the rows of the sagas $1..$2.
	insert string
	// synthetic selects the synthetic rows (a WHERE condition).
	synthetic string
}

// preloadDB is one service database and what a synthetic saga leaves in it.
type preloadDB struct {
	db      string
	service string
	// inbox are the events the service consumed (processed_events rows).
	inbox []sagaEvent
	own   []preloadTable
}

// item is the JSON of a saga's one line.
const item = `jsonb_build_object('sku', 'PRELOAD-' || (g % 32), 'qty', 1, 'unitPrice', 15000)`

// tables are every table of the database the preload fills: its own, the inbox and the dead
// letters.
func (p preloadDB) tables() []preloadTable {
	inbox := preloadTable{
		name: "processed_events",
		insert: params + `INSERT INTO processed_events (event_id, event_type, topic, processed_at)
			SELECT ` + synthID("e.kind", "g") + `::uuid, e.type, e.topic, ` + at + ` + e.after_ms * interval '1 millisecond'
			FROM ` + series + `, ` + eventsSQL(p.inbox) + ` ORDER BY g, e.after_ms`,
		synthetic: fmt.Sprintf("event_id BETWEEN '%s' AND '%s'", syntheticLow, syntheticHigh),
	}
	dead := preloadTable{
		name: "dead_letters",
		insert: params + fmt.Sprintf(`INSERT INTO dead_letters (service, event_id, event_type, topic, partition, "offset", key, headers, value, error, attempts, created_at)
			SELECT '%s', %s, 'OrderCreated', 'order-events', -1, g, %s, '{"eventType": "OrderCreated"}',
			       convert_to(repeat('x', 400), 'UTF8'), 'preload: a synthetic dead letter', 5, %s
			FROM %s WHERE g %% %d = 0`, p.service, synthID(fmt.Sprint(kindDeadLetter), "g"), synthID(fmt.Sprint(kindOrder), "g"), at, series, deadLetterEvery),
		synthetic: fmt.Sprintf("partition = -1 AND event_id BETWEEN '%s' AND '%s'", syntheticLow, syntheticHigh),
	}
	return append(append([]preloadTable{}, p.own...), inbox, dead)
}

// orderID is the SQL of saga g's order id (text).
var orderID = synthID(fmt.Sprint(kindOrder), "g")

// bySynthetic is the condition on a column holding a synthetic id.
func bySynthetic(col string) string {
	return fmt.Sprintf("%s BETWEEN '%s' AND '%s'", col, syntheticLow, syntheticHigh)
}

// preloadDBs is what one happy-path saga leaves in every service database, as the services write
// it (a test checks the statements against their migrations): the order, its line and its
// timeline of eight events, the inventory reservation, the payment, the delivery, the two
// notifications, each service's inbox rows, and a dead letter per deadLetterEvery sagas.
var preloadDBs = []preloadDB{
	{db: "order_db", service: "order",
		inbox: []sagaEvent{evStockReserved, evPaymentAuthorized, evStockCommitted, evDeliveryScheduled, evDeliveryShipped, evDeliveryDelivered},
		own: []preloadTable{
			{name: "orders", synthetic: bySynthetic("id"), insert: params + `INSERT INTO orders (id, customer_id, status, reason, currency, amount, payment_token,
				trace_id, request_hash, created_at, updated_at, deadline_at, delivery)
				SELECT ` + orderID + `::uuid, 'preload-' || (g % 1000), 'COMPLETED', '', 'KRW', 15000, 'tok_ok',
				lpad(to_hex(g), 32, '0'), 'preload', ` + at + `, ` + at + ` + interval '4200 milliseconds', ` + at + ` + interval '1 minute', 'DELIVERED'
				FROM ` + series},
			{name: "order_items", synthetic: bySynthetic("order_id"), insert: params + `INSERT INTO order_items (order_id, line, sku, qty, unit_price)
				SELECT ` + orderID + `::uuid, 1, 'PRELOAD-' || (g % 32), 1, 15000 FROM ` + series},
			{name: "order_timeline", synthetic: bySynthetic("order_id"), insert: params + `INSERT INTO order_timeline (event_id, order_id, event_type, source, occurred_at, recorded_at, data)
				SELECT ` + synthID("e.kind", "g") + `::uuid, ` + orderID + `::uuid, e.type,
				       CASE WHEN e.type IN ('OrderCreated', 'OrderCompleted') THEN 'order-service' ELSE e.topic END,
				       ` + at + ` + e.after_ms * interval '1 millisecond', ` + at + ` + e.after_ms * interval '1 millisecond',
				       jsonb_build_object('orderId', ` + orderID + `, 'amount', 15000, 'currency', 'KRW', 'items', jsonb_build_array(` + item + `))
				FROM ` + series + `, ` + eventsSQL([]sagaEvent{evOrderCreated, evStockReserved, evPaymentAuthorized, evOrderCompleted,
				evStockCommitted, evDeliveryScheduled, evDeliveryShipped, evDeliveryDelivered}) + ` ORDER BY g, e.after_ms`},
		}},
	{db: "inventory_db", service: "inventory", inbox: []sagaEvent{evOrderCreated, evOrderCompleted},
		own: []preloadTable{
			{name: "reservations", synthetic: bySynthetic("order_id"), insert: params + `INSERT INTO reservations (order_id, status, items, created_at, updated_at)
				SELECT ` + orderID + `, 'COMMITTED', jsonb_build_array(` + item + `), ` + at + `, ` + at + ` + interval '120 milliseconds' FROM ` + series},
		}},
	{db: "payment_db", service: "payment", inbox: []sagaEvent{evStockReserved},
		own: []preloadTable{
			{name: "payments", synthetic: bySynthetic("order_id"), insert: params + `INSERT INTO payments (order_id, status, amount, currency, pg_txn_id, created_at, updated_at)
				SELECT ` + orderID + `, 'AUTHORIZED', 15000, 'KRW', 'ch_preload_' || g, ` + at + `, ` + at + ` + interval '80 milliseconds' FROM ` + series},
		}},
	{db: "shipping_db", service: "shipping", inbox: []sagaEvent{evOrderCompleted},
		own: []preloadTable{
			{name: "deliveries", synthetic: bySynthetic("order_id"), insert: params + `INSERT INTO deliveries (order_id, delivery_id, status, items, trace_id, created_at, updated_at)
				SELECT ` + orderID + `::uuid, ` + synthID(fmt.Sprint(kindDelivery), "g") + `::uuid, 'DELIVERED', jsonb_build_array(` + item + `),
				       lpad(to_hex(g), 32, '0'), ` + at + `, ` + at + ` + interval '4200 milliseconds' FROM ` + series},
		}},
	{db: "notification_db", service: "notification", inbox: []sagaEvent{evOrderCompleted, evDeliveryShipped},
		own: []preloadTable{
			{name: "notifications", synthetic: bySynthetic("event_id"), insert: params + `INSERT INTO notifications (key, event_id, event_type, kind, order_id, text, sent_at)
				SELECT ` + synthID("e.kind", "g") + ` || ':customer', ` + synthID("e.kind", "g") + `::uuid, e.type, 'customer', ` + orderID + `,
				       'Your order ' || ` + orderID + ` || ': ' || e.type, ` + at + ` + e.after_ms * interval '1 millisecond'
				FROM ` + series + `, ` + eventsSQL([]sagaEvent{evOrderCompleted, evDeliveryShipped}) + ` ORDER BY g, e.after_ms`},
		}},
}

// WaitDecoded waits (at most within) until every WAL sender (Debezium's, through its logical
// slot) has read the WAL to within maxBytes of its end: after a preload, the WAL senders decode
// gigabytes of changes to tables no connector streams, and a measurement before they are through
// would count that work.
func WaitDecoded(ctx context.Context, admin *sql.DB, within time.Duration, maxBytes int64) error {
	deadline := time.Now().Add(within)
	for {
		var behind int64
		err := admin.QueryRowContext(ctx, `SELECT COALESCE(max(pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)), 0)::bigint
			FROM pg_stat_replication`).Scan(&behind)
		if err != nil {
			return fmt.Errorf("WAL senders' progress: %w", err)
		}
		if behind < maxBytes {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the WAL senders are still %d MiB behind after %s", behind>>20, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// keepSlotsSafe waits while a replication slot of the cluster retains more than half of
// max_slot_wal_keep_size, so that the preload's and its removal's WAL (gigabytes for a million
// sagas) never gets a slot invalidated: the connectors' slots confirm only what Debezium has read,
// and a lost slot loses every event in it (a removal without this pause lost all five here).
func keepSlotsSafe(ctx context.Context, db *sql.DB) error {
	const within = 10 * time.Minute
	deadline := time.Now().Add(within)
	for {
		var retained, keep int64
		err := db.QueryRowContext(ctx, `SELECT
			COALESCE((SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) FROM pg_replication_slots
				WHERE restart_lsn IS NOT NULL), 0)::bigint,
			pg_size_bytes(current_setting('max_slot_wal_keep_size'))`).Scan(&retained, &keep)
		if err != nil {
			return fmt.Errorf("replication slots' retained WAL: %w", err)
		}
		if keep <= 0 || retained < keep/2 {
			return nil // no limit (-1), or well inside it
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("a replication slot still retains %d MiB of WAL (limit %d MiB) after %s: are the connectors running?",
				retained>>20, keep>>20, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// TableRows is the row count of one table.
type TableRows struct {
	DB, Table string
	Rows      int64
}

// PreloadConfig says what to preload.
type PreloadConfig struct {
	// AdminURL is the superuser's URL (any database; each service database is opened by name).
	AdminURL string
	Sagas    int
	// Batch is how many sagas one transaction writes.
	Batch int
	// End is when the newest synthetic saga started; Span how long before it the first would
	// have (they are evenly spread, the oldest first).
	End  time.Time
	Span time.Duration
	// Progress, if set, hears how far it came.
	Progress func(format string, args ...any)
	// dbs are the databases to fill (preloadDBs; a test's own).
	dbs map[string]string
}

// dbURL is the URL of the service database name (or a test's stand-in for it).
func (c PreloadConfig) dbURL(name string) (string, error) {
	if u, ok := c.dbs[name]; ok {
		return u, nil
	}
	return withDatabase(c.AdminURL, name)
}

// databases are the preloadDBs that exist (a stack without shipping has no shipping_db) and
// whose tables are migrated, each open.
func (c PreloadConfig) databases(ctx context.Context) ([]*sql.DB, []preloadDB, error) {
	var (
		out []*sql.DB
		dbs []preloadDB
	)
	for _, p := range preloadDBs {
		u, err := c.dbURL(p.db)
		if err != nil {
			return nil, nil, err
		}
		db, err := sql.Open("postgres", u)
		if err != nil {
			return nil, nil, err
		}
		var missing bool
		err = db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NULL`, p.own[0].name).Scan(&missing)
		if err != nil || missing {
			db.Close() // no such database, or not migrated: this stack does not run the service
			continue
		}
		out, dbs = append(out, db), append(dbs, p)
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("preload: none of the service databases answers at %s", RedactURL(c.AdminURL))
	}
	return out, dbs, nil
}

// Preload writes the rows of cfg.Sagas synthetic, completed sagas into every service database
// the stack has, straight with SQL as the superuser (INSERT ... SELECT FROM generate_series), in
// transactions of cfg.Batch sagas, then VACUUM ANALYZEs what it filled and checkpoints: the
// state of a database that has served them. Synthetic rows left by an earlier preload are
// removed first (RemovePreload). It returns the row counts after.
func Preload(ctx context.Context, cfg PreloadConfig) ([]TableRows, error) {
	if err := RemovePreload(ctx, cfg); err != nil {
		return nil, err
	}
	dbs, specs, err := cfg.databases(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll(dbs)
	batch := max(cfg.Batch, 1)
	for i, db := range dbs {
		for first := 1; first <= cfg.Sagas; first += batch {
			last := min(first+batch-1, cfg.Sagas)
			err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
				for _, t := range specs[i].tables() {
					if _, err := tx.ExecContext(ctx, t.insert, first, last, cfg.Sagas, cfg.End, cfg.Span.Seconds()); err != nil {
						return fmt.Errorf("preload %s.%s: %w", specs[i].db, t.name, err)
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			if err := keepSlotsSafe(ctx, db); err != nil {
				return nil, err
			}
			if cfg.Progress != nil && (last == cfg.Sagas || last/batch%10 == 0) {
				cfg.Progress("preload %s: %d of %d sagas", specs[i].db, last, cfg.Sagas)
			}
		}
		for _, t := range specs[i].tables() {
			if _, err := db.ExecContext(ctx, `VACUUM (ANALYZE) `+t.name); err != nil {
				return nil, fmt.Errorf("preload: vacuum %s.%s: %w", specs[i].db, t.name, err)
			}
		}
	}
	if _, err := dbs[0].ExecContext(ctx, `CHECKPOINT`); err != nil {
		return nil, fmt.Errorf("preload: checkpoint: %w", err)
	}
	return countRows(ctx, dbs, specs)
}

// RemovePreload deletes every synthetic row (in batches) and VACUUMs the tables it deleted from.
func RemovePreload(ctx context.Context, cfg PreloadConfig) error {
	dbs, specs, err := cfg.databases(ctx)
	if err != nil {
		return err
	}
	defer closeAll(dbs)
	for i, db := range dbs {
		tables := specs[i].tables()
		slices.Reverse(tables) // the rows that refer to an order first
		for _, t := range tables {
			removed := int64(0)
			for {
				res, err := db.ExecContext(ctx, `DELETE FROM `+t.name+` WHERE ctid = ANY (ARRAY(
					SELECT ctid FROM `+t.name+` WHERE `+t.synthetic+` LIMIT 50000))`)
				if err != nil {
					return fmt.Errorf("remove the preload from %s.%s: %w", specs[i].db, t.name, err)
				}
				n, _ := res.RowsAffected()
				removed += n
				if n == 0 {
					break
				}
				if err := keepSlotsSafe(ctx, db); err != nil {
					return err
				}
			}
			if removed > 0 {
				if _, err := db.ExecContext(ctx, `VACUUM (ANALYZE) `+t.name); err != nil {
					return fmt.Errorf("vacuum %s.%s: %w", specs[i].db, t.name, err)
				}
				if cfg.Progress != nil {
					cfg.Progress("removed %d synthetic rows from %s.%s", removed, specs[i].db, t.name)
				}
			}
		}
	}
	return nil
}

// PreloadRows counts the rows of every table the preload fills.
func PreloadRows(ctx context.Context, cfg PreloadConfig) ([]TableRows, error) {
	dbs, specs, err := cfg.databases(ctx)
	if err != nil {
		return nil, err
	}
	defer closeAll(dbs)
	return countRows(ctx, dbs, specs)
}

func countRows(ctx context.Context, dbs []*sql.DB, specs []preloadDB) ([]TableRows, error) {
	var out []TableRows
	for i, db := range dbs {
		for _, t := range specs[i].tables() {
			r := TableRows{DB: specs[i].db, Table: t.name}
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+t.name).Scan(&r.Rows); err != nil {
				return nil, fmt.Errorf("count %s.%s: %w", r.DB, r.Table, err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func closeAll(dbs []*sql.DB) {
	for _, db := range dbs {
		db.Close()
	}
}

// RedactURL hides a URL's password.
func RedactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}

// PreloadRun is one of the two runs of the preload comparison: its step and its CPU (its own
// idle baseline and the step's window).
type PreloadRun struct {
	Step StepResult
	Cost CostModel
}

// PreloadResult is the same rate on the databases as they were and once they hold the rows of
// a number of synthetic sagas.
type PreloadResult struct {
	Sagas int
	// Span is how long before the run the synthetic sagas are spread over; Took how long the
	// preload (inserts, vacuum, checkpoint) took.
	Span, Took    time.Duration
	Before, After []TableRows
	Fresh, Loaded PreloadRun
	// Kept is true when the synthetic rows were left in the databases.
	Kept bool
}

// Markdown renders the comparison: latency and CPU per saga side by side with their ratio, and
// the row counts.
func (r *PreloadResult) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	st := r.Fresh.Step
	p("%.0f orders/s for %s, first on the databases as they were (\"fresh\"), then with the rows of **%d synthetic completed sagas** added ",
		st.Rate, st.Duration, r.Sagas)
	p("(straight with SQL, spread over the %s before the run; the preload with its VACUUM ANALYZE and CHECKPOINT took %s). ", r.Span, r.Took.Round(time.Second))
	p("Each run has its own idle baseline, measured right before it. ")
	if r.Kept {
		p("The synthetic rows were kept (-preload-keep).\n\n")
	} else {
		p("The synthetic rows were removed afterwards.\n\n")
	}
	p("| | fresh | preloaded | preloaded / fresh |\n|---|---:|---:|---:|\n")
	row := func(name string, fresh, loaded float64, okF, okL bool, format string) {
		cell := func(v float64, ok bool) string {
			if !ok {
				return "–"
			}
			return fmt.Sprintf(format, v)
		}
		ratio := "–"
		if okF && okL && fresh != 0 {
			ratio = fmt.Sprintf("%.2f", loaded/fresh)
		}
		p("| %s | %s | %s | %s |\n", name, cell(fresh, okF), cell(loaded, okL), ratio)
	}
	f, l := r.Fresh.Step, r.Loaded.Step
	row("sagas/s", f.Throughput, l.Throughput, true, true, "%.1f")
	row("order→terminal p50 ms", ms(f.Latency.P50), ms(l.Latency.P50), f.Latency.N > 0, l.Latency.N > 0, "%.1f")
	row("order→terminal p99 ms", ms(f.Latency.P99), ms(l.Latency.P99), f.Latency.N > 0, l.Latency.N > 0, "%.1f")
	row("POST p99 ms", ms(f.Post.P99), ms(l.Post.P99), f.Post.N > 0, l.Post.N > 0, "%.1f")
	fw, lw := r.Fresh.Cost.lastWindow(), r.Loaded.Cost.lastWindow()
	fs, okF := r.Fresh.Cost.Stack(fw)
	ls, okL := r.Loaded.Cost.Stack(lw)
	row("**CPU-ms per saga, stack**", fs, ls, okF, okL, "%.2f")
	comps := r.Fresh.Cost.Components()
	for _, c := range append(comps, LoadGenerator) {
		fv, okF := r.Fresh.Cost.PerSaga(fw, c)
		lv, okL := r.Loaded.Cost.PerSaga(lw, c)
		row("CPU-ms per saga, "+c, fv, lv, okF, okL, "%.2f")
	}
	fi, okF := r.Fresh.Cost.IdleStack()
	li, okL := r.Loaded.Cost.IdleStack()
	row("idle stack, % of a core", fi*100, li*100, okF, okL, "%.1f")
	p("\nRows of the tables the preload fills:\n\n| database | table | fresh | preloaded |\n|---|---|---:|---:|\n")
	after := map[[2]string]int64{}
	for _, t := range r.After {
		after[[2]string{t.DB, t.Table}] = t.Rows
	}
	for _, t := range r.Before {
		p("| %s | %s | %d | %d |\n", t.DB, t.Table, t.Rows, after[[2]string{t.DB, t.Table}])
	}
	return b.String()
}

// lastWindow is the model's last load window (the zero window when there is none).
func (m *CostModel) lastWindow() CPUWindow {
	if len(m.Windows) == 0 {
		return CPUWindow{}
	}
	return m.Windows[len(m.Windows)-1]
}
