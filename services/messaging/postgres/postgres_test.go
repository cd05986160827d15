package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/schemas"
)

// openDB returns a fresh, migrated database whose outbox INSERTs are copied to outbox_seen by a
// trigger, so a test can see what Debezium would read from the WAL.
func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db := pgtest.MustOpenTestDB(t)
	ctx := context.Background()
	if err := postgres.MigrateMessaging(ctx, db); err != nil {
		t.Fatalf("MigrateMessaging: %v", err)
	}
	pgtest.CaptureOutbox(t, db)
	return db
}

func TestMigrate(t *testing.T) {
	db := pgtest.MustOpenTestDB(t)
	ctx := context.Background()
	fsys := fstest.MapFS{
		"0002_b.sql": {Data: []byte(`INSERT INTO things VALUES (2);`)},
		"0001_a.sql": {Data: []byte(`CREATE TABLE things (n int); INSERT INTO things VALUES (1);`)},
		"README.md":  {Data: []byte(`not a migration`)},
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = postgres.Migrate(ctx, db, "svc", fsys) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Migrate: %v", err)
	}
	if err := postgres.Migrate(ctx, db, "svc", fsys); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if n := pgtest.Count(t, db, `SELECT count(*) FROM things`); n != 2 {
		t.Fatalf("things has %d rows, want 2 (each migration once)", n)
	}
	if n := pgtest.Count(t, db, `SELECT count(*) FROM schema_migrations WHERE source = 'svc'`); n != 2 {
		t.Fatalf("schema_migrations has %d rows for svc, want 2", n)
	}

	bad := fstest.MapFS{"0003_bad.sql": {Data: []byte(`CREATE TABLE half (n int); SELECT nope;`)}}
	if err := postgres.Migrate(ctx, db, "svc", bad); err == nil {
		t.Fatal("Migrate of a broken script = nil, want error")
	}
	if n := pgtest.Count(t, db, `SELECT count(*) FROM pg_tables WHERE tablename = 'half'`); n != 0 {
		t.Fatal("a failed migration left a table behind")
	}
}

func TestMigrateMessaging(t *testing.T) {
	db := pgtest.MustOpenTestDB(t)
	ctx := context.Background()
	if _, err := db.Exec(`DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'debezium') THEN CREATE ROLE debezium; END IF; END $$`); err != nil {
		t.Fatalf("create role debezium: %v", err)
	}
	for range 2 {
		if err := postgres.MigrateMessaging(ctx, db); err != nil {
			t.Fatalf("MigrateMessaging: %v", err)
		}
	}
	tests := []struct {
		name  string
		query string
		want  int
	}{
		{name: "tables", query: `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('outbox', 'debezium_heartbeat', 'processed_events', 'dead_letters')`, want: 4},
		{name: "publication", query: `SELECT count(*) FROM pg_publication_tables WHERE pubname = 'dbz_outbox'`, want: 2},
		{name: "outbox replica identity default", query: `SELECT count(*) FROM pg_class WHERE relname = 'outbox' AND relreplident = 'd'`, want: 1},
		{name: "debezium reads outbox", query: `SELECT count(*) WHERE has_table_privilege('debezium', 'outbox', 'SELECT')`, want: 1},
		{name: "debezium writes heartbeat", query: `SELECT count(*) WHERE has_table_privilege('debezium', 'debezium_heartbeat', 'INSERT, UPDATE')`, want: 1},
		{name: "debezium cannot write outbox", query: `SELECT count(*) WHERE has_table_privilege('debezium', 'outbox', 'INSERT')`, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pgtest.Count(t, db, tt.query); got != tt.want {
				t.Fatalf("%s = %d, want %d", tt.query, got, tt.want)
			}
		})
	}
}

func TestWithTx(t *testing.T) {
	db := pgtest.MustOpenTestDB(t)
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE t (n int)`); err != nil {
		t.Fatal(err)
	}
	insert := func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO t VALUES (1)`)
		return err
	}
	boom := errors.New("boom")
	tests := []struct {
		name      string
		fn        func(*sql.Tx) error
		wantErr   error
		wantPanic bool
		wantRows  int
	}{
		{name: "commit", fn: insert, wantRows: 1},
		{name: "error rolls back", fn: func(tx *sql.Tx) error { _ = insert(tx); return boom }, wantErr: boom},
		{name: "panic rolls back", fn: func(tx *sql.Tx) error { _ = insert(tx); panic("boom") }, wantPanic: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := db.Exec(`TRUNCATE t`); err != nil {
				t.Fatal(err)
			}
			func() {
				defer func() {
					if p := recover(); (p != nil) != tt.wantPanic {
						t.Fatalf("panic = %v, want panic: %v", p, tt.wantPanic)
					}
				}()
				if err := postgres.WithTx(ctx, db, tt.fn); !errors.Is(err, tt.wantErr) {
					t.Fatalf("WithTx() = %v, want %v", err, tt.wantErr)
				}
			}()
			if n := pgtest.Count(t, db, `SELECT count(*) FROM t`); n != tt.wantRows {
				t.Fatalf("t has %d rows, want %d", n, tt.wantRows)
			}
		})
	}
}

func TestOutboxInsert(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	outbox := pgtest.MustOutbox(t)
	const orderID = "0b9c6a1e-2f3d-4e5a-8b7c-9d0e1f2a3b4c"
	tp := messaging.NewTraceparent()
	e, err := messaging.NewEnvelope("payment", orderID, "PaymentFailed", 1,
		map[string]any{"orderId": orderID, "reason": "CARD_DECLINED", "amount": 39000, "currency": "KRW"}, tp)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.WithTx(ctx, db, func(tx *sql.Tx) error { return outbox.Insert(ctx, tx, e, tp) }); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if n := pgtest.Count(t, db, `SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("outbox has %d rows, want 0 (deleted in the same tx)", n)
	}
	var aggType, aggID, typ, traceparent string
	var payload []byte
	err = db.QueryRow(`SELECT aggregatetype, aggregateid, type, payload, traceparent FROM outbox_seen WHERE id = $1`, e.EventID).
		Scan(&aggType, &aggID, &typ, &payload, &traceparent)
	if err != nil {
		t.Fatalf("read outbox_seen: %v", err)
	}
	if aggType != "payment" || aggID != orderID || typ != "PaymentFailed" || traceparent != tp.String() {
		t.Fatalf("row = %s %s %s %s", aggType, aggID, typ, traceparent)
	}
	// The payload column holds the envelope's JSON exactly as marshaled: it is the Kafka value.
	want, _ := json.Marshal(e)
	if string(payload) != string(want) {
		t.Fatalf("payload = %s\nwant      %s", payload, want)
	}

	rolledBack, _ := messaging.NewEnvelope("payment", orderID, "PaymentFailed", 1,
		map[string]any{"orderId": orderID, "reason": "CARD_DECLINED", "amount": 1, "currency": "KRW"}, tp)
	_ = postgres.WithTx(ctx, db, func(tx *sql.Tx) error {
		if err := outbox.Insert(ctx, tx, rolledBack, tp); err != nil {
			return err
		}
		return errors.New("business change failed")
	})
	if n := pgtest.Count(t, db, `SELECT count(*) FROM outbox_seen WHERE id = $1`, rolledBack.EventID); n != 0 {
		t.Fatal("an outbox row of a rolled-back tx is visible")
	}

	// Events that are bugs of ours: refused, and the transaction writing them fails whole.
	tooLarge, _ := messaging.NewEnvelope("dead-letter", "k", "DeadLettered", 1, map[string]any{"error": strings.Repeat("x", postgres.MaxEventBytes)}, tp)
	tests := []struct {
		name string
		e    messaging.Envelope
		tp   messaging.Traceparent
	}{
		{name: "traceparent of another trace", e: withID(e, "3f2a1b4c-0000-4000-8000-000000000001"), tp: messaging.NewTraceparent()},
		{name: "schema-invalid data", e: mustEnvelope(t, "payment", orderID, "PaymentFailed", map[string]any{"orderId": orderID, "amount": -1}, tp), tp: tp},
		{name: "qty over the bound", e: mustEnvelope(t, "order", orderID, "OrderCompleted", map[string]any{"orderId": orderID, "currency": "KRW", "amount": 1,
			"items": []any{map[string]any{"sku": "A1", "qty": int64(math.MaxInt64), "unitPrice": 0}}}, tp), tp: tp},
		{name: "unknown event type", e: mustEnvelope(t, "payment", orderID, "PaymentRefunded", map[string]any{"orderId": orderID}, tp), tp: tp},
		{name: "over MaxEventBytes", e: tooLarge, tp: tp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := "probe-" + tt.name
			err := postgres.WithTx(ctx, db, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS business (note text)`); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO business VALUES ($1)`, marker); err != nil {
					return err
				}
				return outbox.Insert(ctx, tx, tt.e, tt.tp)
			})
			if err == nil {
				t.Fatal("Insert = nil, want an error")
			}
			if n := pgtest.Count(t, db, `SELECT count(*) FROM outbox_seen WHERE id = $1`, tt.e.EventID); n != 0 {
				t.Fatal("the refused event reached the outbox")
			}
			var n int
			_ = db.QueryRow(`SELECT count(*) FROM business WHERE note = $1`, marker).Scan(&n)
			if n != 0 {
				t.Fatal("the business change of the failed transaction committed")
			}
		})
	}
}

func withID(e messaging.Envelope, id string) messaging.Envelope {
	e.EventID = id
	return e
}

func mustEnvelope(t *testing.T, aggregateType, aggregateID, eventType string, data any, tp messaging.Traceparent) messaging.Envelope {
	t.Helper()
	e, err := messaging.NewEnvelope(aggregateType, aggregateID, eventType, 1, data, tp)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func message(eventType string) *messaging.Message {
	tp := messaging.NewTraceparent()
	e, _ := messaging.NewEnvelope("order", "o1", eventType, 1, map[string]any{"orderId": "o1"}, tp)
	return &messaging.Message{Envelope: e, Traceparent: tp, Record: messaging.Record{Topic: "order-events", Key: "o1"}}
}

func TestTransactional(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE effects (event_id uuid)`); err != nil {
		t.Fatal(err)
	}
	fail := true
	h := postgres.Transactional(db, func(ctx context.Context, tx *sql.Tx, m *messaging.Message) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO effects VALUES ($1)`, m.EventID); err != nil {
			return err
		}
		if fail {
			return errors.New("transient")
		}
		return nil
	})
	m := message("OrderCreated")

	if err := h(ctx, m); err == nil {
		t.Fatal("failing handler returned nil")
	}
	if n := pgtest.Count(t, db, `SELECT count(*) FROM processed_events`); n != 0 {
		t.Fatal("inbox row committed although the handler failed")
	}
	fail = false
	for range 3 {
		if err := h(ctx, m); err != nil {
			t.Fatalf("handler: %v", err)
		}
	}
	if n := pgtest.Count(t, db, `SELECT count(*) FROM effects`); n != 1 {
		t.Fatalf("effects has %d rows after 3 deliveries, want 1", n)
	}
	var first bool
	if err := postgres.WithTx(ctx, db, func(tx *sql.Tx) (err error) {
		first, err = postgres.MarkProcessed(ctx, tx, message("OrderCreated"))
		return err
	}); err != nil || !first {
		t.Fatalf("MarkProcessed of a new event = %v, %v; want true", first, err)
	}
}

func TestDeadLetters(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	dls := postgres.NewDeadLetters(db, pgtest.MustOutbox(t))
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		m    *messaging.Message
	}{
		{name: "decoded", m: message("OrderShipped")},
		{name: "undecodable", m: &messaging.Message{
			Record: messaging.Record{Topic: "order-events", Partition: 2, Offset: 7, Key: "k\x00\xff", Headers: map[string]string{"id": "x\x00"}, Value: []byte{0x00, 0xff, '{'}},
		}},
		{name: "no key", m: &messaging.Message{Record: messaging.Record{Topic: "order-events", Partition: 1, Offset: 9, Value: []byte(`nope`)}}},
		{name: "huge key and value", m: &messaging.Message{
			Record: messaging.Record{Topic: "payment-events", Partition: 0, Offset: 11, Key: strings.Repeat("키", 250_000), Value: []byte(strings.Repeat(`{"a":`, 180_000))},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.m.Offset += 100 // distinct records
			cause := messaging.Permanent(errors.New("poison"))
			id, err := dls.Store(ctx, "inventory", tt.m, cause, 3)
			if err != nil {
				t.Fatalf("Store: %v", err)
			}
			again, err := dls.Store(ctx, "inventory", tt.m, cause, 3)
			if err != nil || again != id {
				t.Fatalf("second Store = %d, %v; want %d (idempotent)", again, err, id)
			}
			dl, err := dls.Get(ctx, id)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if dl.Topic != tt.m.Topic || dl.Offset != tt.m.Offset || string(dl.Value) != string(tt.m.Value) ||
				dl.Attempts != 3 || dl.Error != "poison" || dl.Service != "inventory" || dl.EventID != tt.m.EventID {
				t.Fatalf("Get = %+v", dl)
			}

			var payloads [][]byte
			rows, err := db.Query(`SELECT payload FROM outbox_seen WHERE type = 'DeadLettered' AND payload::jsonb->'data'->>'offset' = $1`, dl.Offset)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var p []byte
				if err := rows.Scan(&p); err != nil {
					t.Fatal(err)
				}
				payloads = append(payloads, p)
			}
			if len(payloads) != 1 {
				t.Fatalf("%d DeadLettered events, want 1", len(payloads))
			}
			if err := v.Validate("DeadLettered", 1, payloads[0]); err != nil {
				t.Fatalf("DeadLettered does not match its schema: %v\n%s", err, payloads[0])
			}
			var e messaging.Envelope
			if err := json.Unmarshal(payloads[0], &e); err != nil {
				t.Fatal(err)
			}
			if len(payloads[0]) > 8<<10 {
				t.Fatalf("DeadLettered has %d bytes: it must copy only excerpts of the record", len(payloads[0]))
			}
			// A plausible id is the event's key; anything else is digested.
			want := regexp.QuoteMeta(tt.m.Key)
			switch {
			case tt.m.Key == "":
				want = "unknown"
			case len(tt.m.Key) > 128 || !utf8.ValidString(tt.m.Key) || strings.ContainsRune(tt.m.Key, 0):
				want = "sha256:[0-9a-f]{64}"
			}
			if !regexp.MustCompile("^" + want + "$").MatchString(e.AggregateID) {
				t.Fatalf("DeadLettered aggregateId = %.80q, want %.80q", e.AggregateID, want)
			}
			var data struct {
				Key        string `json:"key"`
				KeyBytes   int    `json:"keyBytes"`
				ValueBytes int    `json:"valueBytes"`
			}
			if err := json.Unmarshal(e.Data, &data); err != nil {
				t.Fatal(err)
			}
			if data.KeyBytes != len(tt.m.Key) || data.ValueBytes != len(tt.m.Value) || !strings.HasPrefix(dl.Key, data.Key) {
				t.Fatalf("DeadLettered data: key %.40q (%d bytes), value %d bytes; record key %d bytes, value %d bytes",
					data.Key, data.KeyBytes, data.ValueBytes, len(tt.m.Key), len(tt.m.Value))
			}
		})
	}

	list, err := dls.List(ctx, 10)
	if err != nil || len(list) != len(tests) {
		t.Fatalf("List = %d rows, %v; want %d", len(list), err, len(tests))
	}
	if list[0].ID < list[1].ID {
		t.Fatal("List is not newest first")
	}

	id := list[0].ID
	replayErr := errors.New("still broken")
	if err := dls.Replay(ctx, id, func(context.Context, *messaging.Message) error { return replayErr }); !errors.Is(err, replayErr) {
		t.Fatalf("Replay = %v, want %v", err, replayErr)
	}
	dl, _ := dls.Get(ctx, id)
	if dl.ReplayedAt == nil || dl.ReplayError != "still broken" {
		t.Fatalf("after failed replay: %v %q", dl.ReplayedAt, dl.ReplayError)
	}
	var seen *messaging.Message
	if err := dls.Replay(ctx, id, func(_ context.Context, m *messaging.Message) error { seen = m; return nil }); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	dl, _ = dls.Get(ctx, id)
	if dl.ReplayError != "" || seen == nil || string(seen.Value) != string(dl.Value) || seen.Key != dl.Key {
		t.Fatalf("after replay: %q, message %+v", dl.ReplayError, seen)
	}
	if _, err := dls.Get(ctx, 999999); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("Get(missing) = %v, want sql.ErrNoRows", err)
	}
	if err := dls.MarkReplayed(ctx, 999999, nil); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("MarkReplayed(missing) = %v, want sql.ErrNoRows", err)
	}
}

func TestIsUnavailable(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()

	// A backend terminated under a session: what a killed or restarting Postgres looks like.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatalf("conn: %v", err)
	}
	defer conn.Close()
	var pid int
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatalf("backend pid: %v", err)
	}
	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatalf("terminate backend: %v", err)
	}
	_, terminated := conn.ExecContext(ctx, `SELECT 1`)

	// Nothing listens on port 1.
	down, err := sql.Open("postgres", "postgres://nobody:x@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer down.Close()
	refused := down.PingContext(ctx)

	_, syntax := db.ExecContext(ctx, `SELEKT 1`)
	_, dup := db.ExecContext(ctx, `INSERT INTO processed_events (event_id, event_type, topic) VALUES ($1, 'x', 't'), ($1, 'x', 't')`,
		"4bf92f35-77b3-4da6-a3ce-929d0e0e4736")

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil},
		{name: "terminated backend", err: terminated, want: true},
		{name: "connection refused", err: refused, want: true},
		{name: "wrapped and joined", err: errors.Join(errors.New("rollback"), fmt.Errorf("commit tx: %w", refused)), want: true},
		{name: "syntax error", err: syntax},
		{name: "unique violation", err: dup},
		{name: "plain error", err: errors.New("gateway said no")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want && tt.err == nil {
				t.Fatal("the provoked error is nil")
			}
			if got := postgres.IsUnavailable(tt.err); got != tt.want {
				t.Fatalf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestRetention: the prune deletes exactly the rows older than Keep, in batches.
func TestRetention(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 25 {
		age := time.Duration(i) * 24 * time.Hour // 0 to 24 days old
		if _, err := db.Exec(`INSERT INTO processed_events (event_id, event_type, topic, processed_at) VALUES (gen_random_uuid(), 'X', 't', $1)`,
			now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	r := &postgres.Retention{DB: db, Table: "processed_events", Column: "processed_at", Keep: postgres.InboxRetention, Batch: 4}
	n, err := r.Prune(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	// Ages 9..24 days are older than 8 days: 16 rows; 0..8 days stay (8 days exactly is not older).
	if n != 16 || pgtest.Count(t, db, `SELECT count(*) FROM processed_events`) != 9 {
		t.Fatalf("pruned %d, %d left; want 16 pruned, 9 left", n, pgtest.Count(t, db, `SELECT count(*) FROM processed_events`))
	}
	if n, err := r.Prune(ctx, now); err != nil || n != 0 {
		t.Fatalf("second prune = %d, %v; want 0", n, err)
	}
}
