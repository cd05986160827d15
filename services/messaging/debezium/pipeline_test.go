package debezium_test

// These tests run against the real native stack (make up): PostgreSQL, Kafka, and
// Kafka Connect with the three Debezium connectors of connectors/. They write to
// order_db's outbox with aggregatetype "cdctest", so their events go to the topic
// cdctest-events, which no service consumes; they create that topic and read it as the
// stack's test-only Kafka principal (kafkatest), and log in to PostgreSQL with the
// stack's passwords (scripts/lib.sh exports them; make up made them).

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/debezium"
	"outboxsaga.dev/messaging/kafka/kafkatest"
	"outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/schemas"
)

const testTopic = "cdctest-events"

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// password returns role's password in this stack: PG_SUPERPASS for the superuser,
// <ROLE>_PG_PASSWORD for the others, else the stack's secret file (pg-superuser, pg-<role>).
func password(role string) string {
	name, file := strings.ToUpper(role)+"_PG_PASSWORD", "pg-"+role
	if role == "postgres" {
		name, file = "PG_SUPERPASS", "pg-superuser"
	}
	if v := os.Getenv(name); v != "" {
		return v
	}
	raw, _ := os.ReadFile(filepath.Join(kafkatest.StackDir(), "secrets", file))
	return strings.TrimSpace(string(raw))
}

// dbURL is the URL of database db as role, with its password.
func dbURL(role, db string) string { return roleURL(role, password(role), db) }

// roleURL is the URL of database db as role with password pass.
func roleURL(role, pass, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, pass), Path: "/" + db, RawQuery: "sslmode=disable",
		Host: net.JoinHostPort(env("PG_HOST", "127.0.0.1"), env("PG_PORT", "5432"))}
	return u.String()
}

func mustOpen(tb testing.TB, role, db string) *sql.DB {
	tb.Helper()
	conn, err := sql.Open("postgres", dbURL(role, db))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if err := conn.Ping(); err != nil {
		tb.Fatalf("connect to %s as %s: %v (is the stack up? run: make up)", db, role, err)
	}
	return conn
}

func mustConnect(tb testing.TB) *debezium.Client {
	tb.Helper()
	c := debezium.NewClient(env("CONNECT_URL", "http://127.0.0.1:8083"), env("CONNECT_REST_USER", "operator"), os.Getenv("CONNECT_REST_PASSWORD"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitRunning(ctx, "order-outbox"); err != nil {
		tb.Fatalf("the order-outbox connector must run (make up): %v", err)
	}
	return c
}

// record is one Kafka record as the tests look at it.
type record struct {
	Key     string
	Headers map[string]string
	Value   []byte
	Offset  int64
}

// topicReader reads testTopic from the offset it had when the reader was made.
type topicReader struct {
	consumer sarama.PartitionConsumer
}

func mustTopicReader(tb testing.TB) *topicReader {
	tb.Helper()
	// The test-only principal creates the test topic; Connect may write it, not create it.
	brokers := kafkatest.Brokers()
	client, err := sarama.NewClient(brokers, kafkatest.Config(tb))
	if err != nil {
		tb.Fatalf("kafka at %v: %v (is the stack up? run: make up)", brokers, err)
	}
	tb.Cleanup(func() { client.Close() })
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		tb.Fatal(err)
	}
	// One partition: the order of the topic is the order of commits in order_db.
	err = admin.CreateTopic(testTopic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		tb.Fatalf("create %s: %v", testTopic, err)
	}
	var start int64
	for i := 0; ; i++ { // metadata of a new topic takes a moment
		if start, err = client.GetOffset(testTopic, 0, sarama.OffsetNewest); err == nil || i == 50 {
			break
		}
		time.Sleep(200 * time.Millisecond)
		_ = client.RefreshMetadata(testTopic)
	}
	if err != nil {
		tb.Fatalf("offset of %s: %v", testTopic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		tb.Fatal(err)
	}
	pc, err := consumer.ConsumePartition(testTopic, 0, start)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	return &topicReader{consumer: pc}
}

// readUntil hands each record to done until done returns true or the timeout passes,
// and returns the records read.
func (r *topicReader) readUntil(tb testing.TB, timeout time.Duration, done func(record) bool) []record {
	tb.Helper()
	var got []record
	deadline := time.After(timeout)
	for {
		select {
		case m := <-r.consumer.Messages():
			h := map[string]string{}
			for _, rh := range m.Headers {
				h[string(rh.Key)] = string(rh.Value)
			}
			rec := record{Key: string(m.Key), Headers: h, Value: m.Value, Offset: m.Offset}
			got = append(got, rec)
			if done(rec) {
				return got
			}
		case err := <-r.consumer.Errors():
			tb.Fatalf("consume %s: %v", testTopic, err)
		case <-deadline:
			return got
		}
	}
}

func newEvent(tb testing.TB, aggregateID, eventType string, data any) (messaging.Envelope, messaging.Traceparent) {
	tb.Helper()
	tp := messaging.NewTraceparent()
	e, err := messaging.NewEnvelope("cdctest", aggregateID, eventType, 1, data, tp)
	if err != nil {
		tb.Fatal(err)
	}
	return e, tp
}

// anyEvent accepts every event: the cdctest events are not saga events and have no schema.
type anyEvent struct{}

func (anyEvent) Validate(string, int, []byte) error { return nil }

func TestOutboxInsertReachesTopic(t *testing.T) {
	mustConnect(t)
	db := mustOpen(t, "order_svc", "order_db")
	reader := mustTopicReader(t)
	ctx := context.Background()
	orderID := uuid.NewString()
	outbox := postgres.NewOutbox(anyEvent{})

	committed, committedTP := newEvent(t, orderID, "OrderCreated", map[string]any{"orderId": orderID, "amount": 39000, "note": nil})
	rolledBack, rolledBackTP := newEvent(t, orderID, "OrderCanceled", map[string]any{"orderId": orderID})
	marker, markerTP := newEvent(t, orderID, "OrderCompleted", map[string]any{"orderId": orderID})

	if err := postgres.WithTx(ctx, db, func(tx *sql.Tx) error {
		return outbox.Insert(ctx, tx, committed, committedTP)
	}); err != nil {
		t.Fatal(err)
	}
	errAbort := errors.New("abort on purpose")
	err := postgres.WithTx(ctx, db, func(tx *sql.Tx) error {
		if err := outbox.Insert(ctx, tx, rolledBack, rolledBackTP); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("rolled-back tx: got %v, want the abort error", err)
	}
	// The marker commits after the rollback; on a one-partition topic fed in commit
	// order, once it arrives the rolled-back event would already have arrived.
	if err := postgres.WithTx(ctx, db, func(tx *sql.Tx) error {
		return outbox.Insert(ctx, tx, marker, markerTP)
	}); err != nil {
		t.Fatal(err)
	}

	got := reader.readUntil(t, 30*time.Second, func(r record) bool {
		return r.Headers["id"] == marker.EventID
	})
	byID := map[string]record{}
	for _, r := range got {
		byID[r.Headers["id"]] = r
	}
	if _, ok := byID[marker.EventID]; !ok {
		t.Fatalf("the marker event never reached %s (got %d records)", testTopic, len(got))
	}
	if _, ok := byID[rolledBack.EventID]; ok {
		t.Errorf("the event of a rolled-back transaction reached %s", testTopic)
	}
	r, ok := byID[committed.EventID]
	if !ok {
		t.Fatalf("the committed event %s never reached %s", committed.EventID, testTopic)
	}
	if r.Key != orderID {
		t.Errorf("key = %q, want the aggregate id %q", r.Key, orderID)
	}
	wantHeaders := map[string]string{"id": committed.EventID, "eventType": "OrderCreated", "traceparent": committedTP.String()}
	for k, want := range wantHeaders {
		if r.Headers[k] != want {
			t.Errorf("header %s = %q, want %q", k, r.Headers[k], want)
		}
	}
	// The value is the outbox payload byte for byte: the envelope itself as a JSON object, not a
	// string holding JSON, not wrapped in a Connect schema envelope, not re-encoded.
	if want, _ := json.Marshal(committed); string(r.Value) != string(want) {
		t.Errorf("value = %s\nwant    %s", r.Value, want)
	}
	var value map[string]json.RawMessage
	if err := json.Unmarshal(r.Value, &value); err != nil {
		t.Fatalf("value is not a JSON object: %v: %s", err, r.Value)
	}
	if _, wrapped := value["schema"]; wrapped {
		t.Fatalf("value carries a Connect schema wrapper: %s", r.Value)
	}
	var got1 messaging.Envelope
	if err := json.Unmarshal(r.Value, &got1); err != nil {
		t.Fatal(err)
	}
	var gotData, wantData any
	_ = json.Unmarshal(got1.Data, &gotData)
	_ = json.Unmarshal(committed.Data, &wantData)
	if fmt.Sprint(gotData) != fmt.Sprint(wantData) {
		t.Errorf("data = %v, want %v (null fields kept)", gotData, wantData)
	}
	got1.Data, committed.Data = nil, nil
	if !got1.OccurredAt.Equal(committed.OccurredAt) {
		t.Errorf("occurredAt = %v, want %v", got1.OccurredAt, committed.OccurredAt)
	}
	got1.OccurredAt, committed.OccurredAt = time.Time{}, time.Time{}
	if fmt.Sprintf("%+v", got1) != fmt.Sprintf("%+v", committed) {
		t.Errorf("envelope = %+v\nwant       %+v", got1, committed)
	}
}

func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for ; dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "connect.sh")); err == nil {
			return dir
		}
	}
	tb.Fatal("repository root (with scripts/connect.sh) not found")
	return ""
}

// killConnect SIGKILLs the Kafka Connect worker that scripts/connect.sh started.
func killConnect(tb testing.TB, root string) {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(env("STACK_DIR", filepath.Join(root, ".stack")), "pids", "connect.pid"))
	if err != nil {
		tb.Fatalf("no pid file of the native Connect worker: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0])) // the first line (tools/supervisor)
	if err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		tb.Fatalf("kill connect %d: %v", pid, err)
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

func TestConnectCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills Kafka Connect")
	}
	root := repoRoot(t)
	connect := mustConnect(t)
	db := mustOpen(t, "order_svc", "order_db")
	reader := mustTopicReader(t)
	ctx := context.Background()
	runID := "crash-" + uuid.NewString()

	const total, perStatement = 1000, 10
	// Rows go in as multi-row INSERT statements (10 rows, one statement, one LSN range)
	// followed by their DELETE, in one transaction each, like InsertOutbox does row by row.
	insertBatch := func(batch int) error {
		return postgres.WithTx(ctx, db, func(tx *sql.Tx) error {
			var (
				vals []string
				args []any
				ids  []string
			)
			for i := 0; i < perStatement; i++ {
				e, tp := newEvent(t, runID, "CrashProbe", map[string]any{"n": batch*perStatement + i})
				payload, _ := json.Marshal(e)
				n := len(args)
				vals = append(vals, fmt.Sprintf("($%d, 'cdctest', $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5))
				args = append(args, e.EventID, runID, e.EventType, string(payload), tp.String())
				ids = append(ids, e.EventID)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, traceparent) VALUES `+
				strings.Join(vals, ", "), args...); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, pq.Array(ids))
			return err
		})
	}

	restarted := make(chan error, 1)
	for b := 0; b < total/perStatement; b++ {
		if b == 30 { // 300 rows in: kill Connect, go on inserting, restart it meanwhile
			killConnect(t, root)
			t.Logf("SIGKILLed Kafka Connect after %d rows", b*perStatement)
			go func() {
				out, err := exec.Command(filepath.Join(root, "scripts", "connect.sh"), "start").CombinedOutput()
				if err != nil {
					err = fmt.Errorf("%v: %s", err, out)
				}
				restarted <- err
			}()
		}
		if err := insertBatch(b); err != nil {
			t.Fatalf("insert batch %d: %v", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-restarted; err != nil {
		t.Fatalf("restart connect: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := connect.WaitRunning(wctx, "order-outbox", "inventory-outbox", "payment-outbox"); err != nil {
		t.Fatal(err)
	}

	seen := map[string]int{}
	reader.readUntil(t, 120*time.Second, func(r record) bool {
		if r.Key == runID {
			seen[r.Headers["id"]]++
		}
		return len(seen) == total
	})
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("distinct events received: %d of %d; duplicates (at-least-once redelivery after the crash): %d", len(seen), total, dups)
	if len(seen) != total {
		t.Fatalf("lost %d events across the Connect crash", total-len(seen))
	}
}

func TestIdleSlotAdvances(t *testing.T) {
	mustConnect(t)
	admin := mustOpen(t, "postgres", "postgres")
	const slot = "payment_outbox" // payment_db stays idle in this test
	var before string
	if err := admin.QueryRow(`SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&before); err != nil {
		t.Fatalf("slot %s: %v", slot, err)
	}
	// Write WAL elsewhere in the cluster: without heartbeats the idle database's slot
	// would never confirm past it, and the WAL would pile up behind it.
	if _, err := admin.Exec(`CREATE TEMP TABLE wal_filler AS SELECT g FROM generate_series(1, 10000) g`); err != nil {
		t.Fatal(err)
	}
	var target string
	if err := admin.QueryRow(`SELECT pg_current_wal_lsn()::text`).Scan(&target); err != nil {
		t.Fatal(err)
	}
	// heartbeat.interval.ms is 5 s in connectors/payment-outbox.json: allow four.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var passed bool
		if err := admin.QueryRow(`SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`, slot, target).Scan(&passed); err != nil {
			t.Fatal(err)
		}
		if passed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s did not confirm past %s within 20 s (was at %s)", slot, target, before)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestRolesAreConfined: every role of the cluster can do its job and nothing more
// (infra/postgres/init.sql; docs/architecture.md, "Credentials and roles"). Per service database:
// the runtime role <svc>_svc changes rows but not the schema; the connector's role debezium_<svc>
// reads the outbox and writes the heartbeat and nothing else, in its own database only, and has
// no physical replication (pg_hba.conf has no replication line: no pg_basebackup of the cluster).
// The superuser's well-known password is refused.
func TestRolesAreConfined(t *testing.T) {
	services := []string{"order", "inventory", "payment", "shipping", "notification"}
	t.Run("the superuser's well-known password is refused", func(t *testing.T) {
		wantRefused(t, roleURL("postgres", "postgres", "postgres"), "28P01")
	})
	t.Run("nobody logs in as the group role debezium", func(t *testing.T) {
		wantRefused(t, roleURL("debezium", "debezium", "order_db"), "28P01")
	})
	for _, svc := range services {
		db, runtime, cdc := svc+"_db", svc+"_svc", "debezium_"+svc
		t.Run(cdc+" writes no business table", func(t *testing.T) {
			dbz := mustOpen(t, cdc, db)
			// Privileges as the catalog sees them: only the heartbeat table is writable.
			rows, err := dbz.Query(`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'debezium_heartbeat'
				  AND (has_table_privilege(current_user, c.oid, 'INSERT') OR has_table_privilege(current_user, c.oid, 'UPDATE')
				    OR has_table_privilege(current_user, c.oid, 'DELETE') OR has_table_privilege(current_user, c.oid, 'TRUNCATE'))`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var name string
				_ = rows.Scan(&name)
				t.Errorf("%s may write %s.%s", cdc, db, name)
			}
			// And in practice: the outbox and the inbox refuse it; it reads no business table.
			for _, stmt := range []string{
				`INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, traceparent) VALUES (gen_random_uuid(), 'x', 'x', 'x', '{}', 'x')`,
				`DELETE FROM processed_events`,
				`SELECT count(*) FROM dead_letters`,
			} {
				wantDenied(t, dbz, cdc, stmt)
			}
		})
		t.Run(cdc+" cannot replicate the cluster", func(t *testing.T) {
			// What pg_basebackup would open: a physical replication connection.
			cmd := exec.Command("psql", "-X", "-w", "-c", "IDENTIFY_SYSTEM", fmt.Sprintf("host=%s port=%s user=%s dbname=%s replication=true",
				env("PG_HOST", "127.0.0.1"), env("PG_PORT", "5432"), cdc, db))
			cmd.Env = append(os.Environ(), "PGPASSWORD="+password(cdc), "PGCONNECT_TIMEOUT=5")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "no pg_hba.conf entry for replication connection") {
				t.Errorf("physical replication connection as %s: %v %s, want it refused by pg_hba.conf", cdc, err, out)
			}
		})
		t.Run(runtime+" changes rows, not the schema", func(t *testing.T) {
			conn := mustOpen(t, runtime, db)
			for _, stmt := range []string{
				`CREATE TABLE intruder (n int)`,
				`CREATE TEMP TABLE intruder (n int)`,
				`ALTER TABLE outbox ADD COLUMN intruder int`,
				`ALTER TABLE processed_events DISABLE TRIGGER ALL`,
				`DROP TABLE dead_letters`,
				`TRUNCATE processed_events`,
				`DROP PUBLICATION dbz_outbox`,
				`CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
			} {
				wantDenied(t, conn, runtime, stmt)
			}
			var owned int
			if err := conn.QueryRow(`SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)`).Scan(&owned); err != nil {
				t.Fatal(err)
			}
			if owned != 0 {
				t.Errorf("%s owns %d relations, want none (the owner role %s_owner owns them)", runtime, owned, svc)
			}
			// The rows it needs: every table of its schema, read and written.
			if _, err := conn.Exec(`DELETE FROM processed_events WHERE event_id = gen_random_uuid()`); err != nil {
				t.Errorf("%s cannot delete rows: %v", runtime, err)
			}
		})
		for _, other := range services {
			if other == svc {
				continue
			}
			for _, role := range []string{runtime, cdc} {
				t.Run(role+" cannot connect to "+other+"_db", func(t *testing.T) {
					wantRefused(t, dbURL(role, other+"_db"), "42501")
				})
			}
		}
	}
}

// wantRefused checks that logging in at url fails with SQLSTATE code (28P01: wrong password;
// 42501: no CONNECT on the database).
func wantRefused(t *testing.T, url, code string) {
	t.Helper()
	conn, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Ping()
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || string(pqErr.Code) != code {
		t.Errorf("log in: got %v, want SQLSTATE %s", err, code)
	}
}

// wantDenied checks that stmt fails as role with permission denied (42501).
func wantDenied(t *testing.T, conn *sql.DB, role, stmt string) {
	t.Helper()
	_, err := conn.Exec(stmt)
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "42501" {
		t.Errorf("%s as %s: got %v, want permission denied (42501)", stmt, role, err)
	}
}

// TestPayloadByteForByte is a property test of the CDC path: random events that their schemas
// accept, ordinary and extreme (the longest strings, multi-byte and escaped characters, integers
// at their bounds, int64 at its maximum, the most items), written to the outbox, arrive on Kafka
// with exactly the bytes of their payload, the aggregate id as key and the type as header.
func TestPayloadByteForByte(t *testing.T) {
	connect := mustConnect(t)
	db := mustOpen(t, "order_svc", "order_db")
	reader := mustTopicReader(t)
	ctx := context.Background()
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}

	type sent struct {
		key, eventType string
		payload        []byte
	}
	want := map[string]sent{}
	for _, extreme := range []bool{false, true} {
		g, err := schemas.NewGenerator(uint64(time.Now().UnixNano()))
		if err != nil {
			t.Fatal(err)
		}
		g.Extreme = extreme
		for _, et := range g.EventTypes() {
			for i := 0; i < 25; i++ {
				payload, err := g.Event(et.Type, et.Version)
				if err != nil {
					t.Fatal(err)
				}
				if err := v.Validate(et.Type, et.Version, payload); err != nil {
					t.Fatalf("the generator made an invalid %s: %v", et.Type, err)
				}
				var head struct {
					EventID string `json:"eventId"`
				}
				if err := json.Unmarshal(payload, &head); err != nil {
					t.Fatal(err)
				}
				want[head.EventID] = sent{key: uuid.NewString(), eventType: et.Type, payload: payload}
			}
		}
	}
	// Written as the services write them (insert and delete in one transaction), several per
	// transaction, with aggregate type cdctest so they go to cdctest-events.
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	for start := 0; start < len(ids); start += 20 {
		err := postgres.WithTx(ctx, db, func(tx *sql.Tx) error {
			for _, id := range ids[start:min(start+20, len(ids))] {
				w := want[id]
				if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, traceparent)
					VALUES ($1, 'cdctest', $2, $3, $4, $5)`, id, w.key, w.eventType, string(w.payload), messaging.NewTraceparent().String()); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = $1`, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("insert: %v", err)
		}
	}

	got := map[string]record{}
	reader.readUntil(t, 60*time.Second, func(r record) bool {
		if _, ok := want[r.Headers["id"]]; ok {
			got[r.Headers["id"]] = r
		}
		return len(got) == len(want)
	})
	if len(got) != len(want) {
		t.Fatalf("%d of %d events reached %s", len(got), len(want), testTopic)
	}
	for id, w := range want {
		r := got[id]
		if string(r.Value) != string(w.payload) {
			t.Errorf("event %s (%s): Kafka value differs from the outbox payload\n got %s\nwant %s", id, w.eventType, r.Value, w.payload)
		}
		if r.Key != w.key || r.Headers["eventType"] != w.eventType {
			t.Errorf("event %s: key %q header eventType %q, want %q %q", id, r.Key, r.Headers["eventType"], w.key, w.eventType)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := connect.WaitRunning(ctx, "order-outbox"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d random schema-valid events arrived byte for byte", len(want))
}

// TestMonitor: a service's view of its CDC path follows the real connector and slot. Paused, the
// path is degraded (events wait in the WAL); without a slot, events are no longer captured and the
// check fails outright.
func TestMonitor(t *testing.T) {
	connect := mustConnect(t)
	db := mustOpen(t, "order_svc", "order_db")
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m := &debezium.Monitor{Connect: connect, DB: db, Connector: "order-outbox", Slot: "order_outbox", Log: zerolog.Nop()}
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(ctx); err == nil {
		t.Fatal("Check before the first poll = nil, want a degraded state")
	}
	if h := m.Poll(ctx); !h.Streaming() || h.Problem() != "" {
		t.Fatalf("running connector: %+v (problem %q)", h, h.Problem())
	}
	if err := m.Check(ctx); err != nil {
		t.Fatalf("Check = %v, want nil", err)
	}
	if v := gauge(t, reg, "cdc_connector_running"); v != 1 {
		t.Fatalf("cdc_connector_running = %v, want 1", v)
	}

	put := func(action string) {
		req, _ := connect.NewRequest(context.Background(), http.MethodPut, "/connectors/order-outbox/"+action, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode >= 300 {
			t.Fatalf("%s connector: %v %v", action, err, res)
		}
		res.Body.Close()
	}
	put("pause")
	t.Cleanup(func() {
		put("resume")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := connect.WaitRunning(ctx, "order-outbox"); err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		h := m.Poll(ctx)
		if h.TaskState == "PAUSED" {
			err := m.Check(ctx)
			var d debezium.DegradedError
			if !errors.As(err, &d) || !strings.Contains(err.Error(), "PAUSED") {
				t.Fatalf("Check of a paused connector = %v, want a DegradedError naming PAUSED", err)
			}
			if v := gauge(t, reg, "cdc_connector_running"); v != 0 {
				t.Fatalf("cdc_connector_running = %v, want 0", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task never PAUSED: %+v", h)
		}
		time.Sleep(300 * time.Millisecond)
	}

	noSlot := &debezium.Monitor{Connect: connect, DB: db, Connector: "order-outbox", Slot: "no_such_slot", Log: zerolog.Nop()}
	noSlot.Poll(ctx)
	err := noSlot.Check(ctx)
	var d debezium.DegradedError
	if err == nil || errors.As(err, &d) || !strings.Contains(err.Error(), "no replication slot") {
		t.Fatalf("Check without a slot = %v, want a plain error naming the missing slot", err)
	}
	unregistered := &debezium.Monitor{Connect: connect, DB: db, Connector: "no-such-connector", Slot: "order_outbox", Log: zerolog.Nop()}
	if h := unregistered.Poll(ctx); h.ConnectError != "" || !strings.Contains(h.Problem(), "not registered") {
		t.Fatalf("unregistered connector: %+v, problem %q", h, h.Problem())
	}
}

// gauge returns the value of the one series of a gauge in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
