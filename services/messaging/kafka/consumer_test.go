package kafka_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/eventually"
	"outboxsaga.dev/messaging/kafka"
	"outboxsaga.dev/messaging/kafka/kafkatest"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service/servicetest"
	"outboxsaga.dev/schemas"
)

// brokers returns KAFKA_BROKERS (default 127.0.0.1:9092) and an admin client, failing the test
// when Kafka does not answer (skipping it when SKIP_INTEGRATION=1).
func brokers(t *testing.T) ([]string, sarama.ClusterAdmin) {
	t.Helper()
	if os.Getenv("SKIP_INTEGRATION") == "1" {
		t.Skip("SKIP_INTEGRATION=1: skipping a test that needs Kafka")
	}
	// The test-only principal (injector) may create and delete test-* topics, write to them and
	// use test-* groups.
	list := kafkatest.Brokers()
	admin, err := sarama.NewClusterAdmin(list, kafkatest.Config(t))
	if err != nil {
		t.Fatalf("Kafka at %v does not answer (%v): run `make up` (or set SKIP_INTEGRATION=1)", list, err)
	}
	t.Cleanup(func() { admin.Close() })
	return list, admin
}

func randomName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// createTopic creates a topic of partitions partitions, deleted when the test ends.
func createTopic(t *testing.T, admin sarama.ClusterAdmin, topic string, partitions int32) {
	t.Helper()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	t.Cleanup(func() { _ = admin.DeleteTopic(topic) })
}

// produce sends values to partition 0 of topic, in order, keyed by testOrderID (test code only: services
// never produce).
func produce(t *testing.T, brokerList []string, topic string, values ...[]byte) {
	t.Helper()
	produceTo(t, brokerList, topic, 0, values...)
}

// produceTo is produce to one partition of topic.
func produceTo(t *testing.T, brokerList []string, topic string, partition int32, values ...[]byte) {
	t.Helper()
	cfg := kafkatest.Config(t)
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(brokerList, cfg)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	for _, v := range values {
		msg := &sarama.ProducerMessage{Topic: topic, Partition: partition, Key: sarama.StringEncoder(testOrderID), Value: sarama.ByteEncoder(v),
			Headers: []sarama.RecordHeader{{Key: []byte("traceparent"), Value: []byte(messaging.NewTraceparent().String())}}}
		if _, _, err := p.SendMessage(msg); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// event returns a valid OrderCompleted envelope and its id.
func event(t *testing.T) ([]byte, string) {
	t.Helper()
	return envelopeWithID(t, "OrderCompleted", orderCompleted())
}

// recorder is a handler that records the event ids it handled, failing chosen ids a number of times.
type recorder struct {
	mu      sync.Mutex
	fail    map[string]int // event id → failures left
	calls   map[string]int
	handled []string
}

func newRecorder() *recorder {
	return &recorder{fail: map[string]int{}, calls: map[string]int{}}
}

func (r *recorder) handle(_ context.Context, m *messaging.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[m.EventID]++
	if r.fail[m.EventID] > 0 {
		r.fail[m.EventID]--
		return errors.New("transient failure")
	}
	r.handled = append(r.handled, m.EventID)
	return nil
}

func (r *recorder) snapshot() (handled []string, calls map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls = make(map[string]int, len(r.calls))
	for k, v := range r.calls {
		calls[k] = v
	}
	return slices.Clone(r.handled), calls
}

// committedOffset returns the offset group committed on partition of topic, -1 for none.
func committedOffset(t *testing.T, admin sarama.ClusterAdmin, group, topic string, partition int32) int64 {
	t.Helper()
	res, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {partition}})
	if err != nil {
		t.Fatalf("list offsets of %s: %v", group, err)
	}
	block := res.GetBlock(topic, partition)
	if block == nil {
		return -1
	}
	return block.Offset
}

func TestConsumerRetriesDeadLettersAndMarks(t *testing.T) {
	brokerList, admin := brokers(t)
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	topic, group := randomName("test-events"), randomName("test-group")
	createTopic(t, admin, topic, 1)

	first, firstID := event(t)
	flaky, flakyID := event(t)
	last, lastID := event(t)
	produce(t, brokerList, topic, first, []byte("not json"), flaky, last)

	rec := newRecorder()
	rec.fail[flakyID] = 2
	router := messaging.NewRouter()
	router.Handle("OrderCompleted", 1, rec.handle)
	store := &memStore{}
	logger := zerolog.New(zerolog.NewTestWriter(t))
	c := &kafka.Consumer{
		Brokers: brokerList, Group: group, Topics: []string{topic}, Service: "test", Logger: logger,
		Handler: messaging.Chain(router.Dispatch,
			kafka.Log(logger, messaging.Keyed{Field: "orderId"}), kafka.Metrics(prometheus.NewRegistry()), kafka.DeadLetter(store, "test"),
			kafka.Retry(5, 10*time.Millisecond, 50*time.Millisecond, nil), kafka.Recover(), kafka.Decode(v)),
	}
	c.Username, c.Password = kafkatest.Principal(t)
	stop := servicetest.Run(t, c.Run)

	eventually.Holds(t, time.Minute, func() string {
		if handled, _ := rec.snapshot(); !slices.Contains(handled, lastID) {
			return "the last event is not handled yet"
		}
		return ""
	})
	if err := c.Ready(); err != nil {
		t.Errorf("Ready() = %v while consuming", err)
	}
	stop()

	handled, calls := rec.snapshot()
	if want := []string{firstID, flakyID, lastID}; !slices.Equal(handled, want) {
		t.Fatalf("handled %v, want %v in order", handled, want)
	}
	if calls[flakyID] != 3 {
		t.Fatalf("flaky event called %d times, want 3 (two failures, one success)", calls[flakyID])
	}
	dead := store.all()
	if len(dead) != 1 || dead[0].offset != 1 || dead[0].value != "not json" || !messaging.IsPermanent(dead[0].cause) {
		t.Fatalf("dead letters %+v, want the poison at offset 1", dead)
	}
	if got := committedOffset(t, admin, group, topic, 0); got != 4 {
		t.Fatalf("committed offset %d, want 4 (every message marked)", got)
	}
}

func TestConsumerWaitsForTopicAndRedeliversUnmarked(t *testing.T) {
	brokerList, admin := brokers(t)
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	topic, group := randomName("test-events"), randomName("test-group")

	rec := newRecorder()
	router := messaging.NewRouter()
	router.Handle("OrderCompleted", 1, rec.handle)
	c := &kafka.Consumer{
		Brokers: brokerList, Group: group, Topics: []string{topic}, Service: "test",
		Logger: zerolog.New(zerolog.NewTestWriter(t)), MaxBackoff: 500 * time.Millisecond,
		// No Retry and no DeadLetter: a failure reaches the consumer, which must not mark the offset.
		Handler: messaging.Chain(router.Dispatch, kafka.Decode(v)),
	}
	c.Username, c.Password = kafkatest.Principal(t)
	servicetest.Run(t, c.Run)
	// The consumer starts before its topic exists: its first join fails, and it is not ready.
	eventually.Holds(t, time.Minute, func() string {
		if err := c.Ready(); err == nil || strings.Contains(err.Error(), "not joined yet") {
			return fmt.Sprintf("the consumer has not tried to join yet (Ready() = %v)", err)
		}
		return ""
	})
	createTopic(t, admin, topic, 1)
	raw, id := event(t)
	rec.fail[id] = 1
	produce(t, brokerList, topic, raw)

	eventually.Holds(t, time.Minute, func() string {
		if handled, _ := rec.snapshot(); !slices.Contains(handled, id) {
			return "the event is not handled after its failure"
		}
		return ""
	})
	if _, calls := rec.snapshot(); calls[id] != 2 {
		t.Fatalf("event called %d times, want 2 (failed, then redelivered)", calls[id])
	}
}

// batchEnv is one batch test's topic and database, and the handlers its consumers run: every
// event they handle is applied to the table applied (in the transaction Transactional gives it,
// whose id is kept, so the test sees which events committed together), and then does what its
// behaviour says.
type batchEnv struct {
	t         *testing.T
	brokers   []string
	admin     sarama.ClusterAdmin
	topic     string
	db        *sql.DB
	dead      *msgpg.DeadLetters
	validator *schemas.Validator
	reg       *prometheus.Registry

	mu        sync.Mutex
	behaviour map[string]behaviour // by event id; none: apply and succeed
	failed    map[string]bool      // the failsOnce events that failed already
	deadlocks int                  // deadlocks (SQLSTATE 40P01) the handlers ran into
}

// behaviour is what a test handler does with an event after applying it.
type behaviour struct {
	poison    bool // fail with a Permanent error
	panics    bool
	failsOnce bool // fail with a transient error the first time
	// lock is a row of table locks to lock (FOR UPDATE), and then to wait at meet (nil: not).
	lock string
	meet *barrier
	// gate > 0 holds the partition until its claim has fetched up to this high-water mark, so
	// that the records after the gate wait in the claim's buffer together; entered is closed
	// when the gate is reached.
	gate    int64
	entered chan struct{}
}

// barrier lets parties goroutines wait until all of them arrived, once; later arrivals pass.
type barrier struct {
	mu      sync.Mutex
	parties int
	arrived int
	all     chan struct{}
}

func newBarrier(parties int) *barrier { return &barrier{parties: parties, all: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	if b.arrived++; b.arrived == b.parties {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(20 * time.Second): // a broken runtime must not hang the test
	}
}

func newBatchEnv(t *testing.T, partitions int32) *batchEnv {
	t.Helper()
	brokerList, admin := brokers(t)
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.MustOpenTestDB(t)
	if err := msgpg.MigrateMessaging(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	pgtest.CaptureOutbox(t, db)
	_, err = db.Exec(`
		CREATE TABLE applied (event_id uuid PRIMARY KEY, xid bigint NOT NULL, in_batch boolean NOT NULL, times int NOT NULL);
		CREATE TABLE locks (k text PRIMARY KEY);
		INSERT INTO locks VALUES ('a'), ('b');`)
	if err != nil {
		t.Fatal(err)
	}
	e := &batchEnv{t: t, brokers: brokerList, admin: admin, topic: randomName("test-events"), db: db,
		dead: msgpg.NewDeadLetters(db, pgtest.MustOutbox(t)), validator: v, reg: prometheus.NewRegistry(),
		behaviour: map[string]behaviour{}, failed: map[string]bool{}}
	createTopic(t, admin, e.topic, partitions)
	return e
}

// handle is the test's saga step: it applies m (in_batch says whether it ran in a batch, times
// counts how often it took effect) and then behaves as told.
func (e *batchEnv) handle(ctx context.Context, tx *sql.Tx, m *messaging.Message) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO applied (event_id, xid, in_batch, times)
		VALUES ($1, pg_current_xact_id()::text::bigint, $2, 1)
		ON CONFLICT (event_id) DO UPDATE SET times = applied.times + 1`, m.EventID, messaging.InBatch(ctx))
	if err != nil {
		return err
	}
	e.mu.Lock()
	b := e.behaviour[m.EventID]
	failNow := b.failsOnce && !e.failed[m.EventID]
	e.failed[m.EventID] = true
	e.mu.Unlock()
	switch {
	case b.poison:
		return messaging.Permanent(errors.New("poison"))
	case b.panics:
		panic("boom")
	case failNow:
		return errors.New("transient failure")
	case b.gate > 0:
		select {
		case <-b.entered:
		default:
			close(b.entered)
		}
		for deadline := time.Now().Add(30 * time.Second); kafka.HighWaterMark(ctx) < b.gate && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // the claim hands what it fetched to its buffer
	}
	if b.lock == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT k FROM locks WHERE k = $1 FOR UPDATE`, b.lock); err != nil {
		if pqErr, ok := errors.AsType[*pq.Error](err); ok && pqErr.Code == "40P01" {
			e.mu.Lock()
			e.deadlocks++
			e.mu.Unlock()
		}
		return err
	}
	if b.meet != nil {
		b.meet.wait()
	}
	return nil
}

// consume starts a consumer of the test's topic in a new group, with the full chain of a service
// (but for the topic check: the test topic is no saga topic) around a Router on which
// OrderCompleted joins batches and OrderCanceled does not. It returns the group and stop.
func (e *batchEnv) consume(batchMax int, batch kafka.BatchFunc) (group string, stop func() time.Duration) {
	e.t.Helper()
	router := messaging.NewRouter()
	router.HandleBatchable("OrderCompleted", 1, msgpg.Transactional(e.db, e.handle))
	router.Handle("OrderCanceled", 1, msgpg.Transactional(e.db, e.handle))
	logger := zerolog.New(zerolog.NewTestWriter(e.t))
	c := &kafka.Consumer{
		Brokers: e.brokers, Group: randomName("test-group"), Topics: []string{e.topic}, Service: "test", Logger: logger,
		BatchMax: batchMax, Batch: batch,
		Handler: messaging.Chain(router.Dispatch,
			kafka.Log(logger, messaging.Keyed{Field: "orderId"}), kafka.Metrics(e.reg), kafka.DeadLetter(e.dead, "test"),
			kafka.Retry(3, 10*time.Millisecond, 50*time.Millisecond, msgpg.IsUnavailable), kafka.Recover(), kafka.Decode(e.validator)),
	}
	c.Username, c.Password = kafkatest.Principal(e.t)
	return c.Group, servicetest.Run(e.t, c.Run)
}

// gate produces, to partition, an OrderCanceled that holds the partition until the claim has
// fetched the n records produced after it (see behaviour.gate), and returns its entered channel.
func (e *batchEnv) gate(partition int32, n int) <-chan struct{} {
	e.t.Helper()
	value, id := envelope(e.t, "OrderCanceled")
	entered := make(chan struct{})
	e.mu.Lock()
	e.behaviour[id] = behaviour{gate: int64(n + 1), entered: entered}
	e.mu.Unlock()
	produceTo(e.t, e.brokers, e.topic, partition, value)
	return entered
}

// records makes one record per kind (see kindOf) and produces them to partition, in order; it
// returns their event ids ("" for an undecodable one).
func (e *batchEnv) records(partition int32, kinds ...string) []string {
	e.t.Helper()
	values, ids := make([][]byte, len(kinds)), make([]string, len(kinds))
	for i, kind := range kinds {
		if kind == "undecodable" {
			values[i] = []byte("not json")
			continue
		}
		eventType, b := kindOf(kind)
		values[i], ids[i] = envelope(e.t, eventType)
		e.mu.Lock()
		e.behaviour[ids[i]] = b
		e.mu.Unlock()
	}
	produceTo(e.t, e.brokers, e.topic, partition, values...)
	return ids
}

// kindOf returns the event type and the behaviour of a kind of test record: ok, poison, panics,
// failsOnce (OrderCompleted, which joins batches) or alone (OrderCanceled, which does not).
func kindOf(kind string) (string, behaviour) {
	switch kind {
	case "poison":
		return "OrderCompleted", behaviour{poison: true}
	case "panics":
		return "OrderCompleted", behaviour{panics: true}
	case "failsOnce":
		return "OrderCompleted", behaviour{failsOnce: true}
	case "alone":
		return "OrderCanceled", behaviour{}
	default:
		return "OrderCompleted", behaviour{}
	}
}

// envelope returns a valid envelope of eventType (OrderCompleted or OrderCanceled) and its id.
func envelope(t *testing.T, eventType string) ([]byte, string) {
	t.Helper()
	data := orderCompleted()
	if eventType == "OrderCanceled" {
		data = map[string]any{"orderId": testOrderID, "reason": "TIMEOUT", "items": data["items"]}
	}
	return envelopeWithID(t, eventType, data)
}

// waitCommitted waits until group committed offset end on each of partitions.
func (e *batchEnv) waitCommitted(group string, end int64, partitions ...int32) {
	e.t.Helper()
	eventually.Holds(e.t, 2*time.Minute, func() string {
		for _, p := range partitions {
			if got := committedOffset(e.t, e.admin, group, e.topic, p); got != end {
				return fmt.Sprintf("partition %d: committed offset %d, want %d", p, got, end)
			}
		}
		return ""
	})
}

// waitEntered waits until every gate was reached.
func waitEntered(t *testing.T, gates ...<-chan struct{}) {
	t.Helper()
	for _, g := range gates {
		select {
		case <-g:
		case <-time.After(time.Minute):
			t.Fatal("the consumer did not reach its gate within a minute")
		}
	}
}

// transactions groups the applied events among ids by the transaction that applied them, in
// the order of ids, as "i j ..." (their indexes in ids), with " batched" when they ran in a
// batch. It fails the test for an event applied more than once.
func (e *batchEnv) transactions(ids []string) []string {
	e.t.Helper()
	var (
		order []int64
		group = map[int64][]string{}
		batch = map[int64]bool{}
	)
	for i, id := range ids {
		if id == "" {
			continue
		}
		var (
			xid     int64
			inBatch bool
			times   int
		)
		err := e.db.QueryRow(`SELECT xid, in_batch, times FROM applied WHERE event_id = $1`, id).Scan(&xid, &inBatch, &times)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		if times != 1 {
			e.t.Errorf("record %d took effect %d times, want once", i, times)
		}
		if _, seen := group[xid]; !seen {
			order = append(order, xid)
		}
		group[xid] = append(group[xid], fmt.Sprint(i))
		batch[xid] = batch[xid] || inBatch
	}
	out := make([]string, len(order))
	for i, xid := range order {
		out[i] = strings.Join(group[xid], " ")
		if batch[xid] {
			out[i] += " batched"
		}
	}
	return out
}

// deadLetters returns the stored dead letters as "offset:attempts", and fails the test unless
// exactly one DeadLettered event went out for each.
func (e *batchEnv) deadLetters() []string {
	e.t.Helper()
	rows, err := e.db.Query(`SELECT "offset", attempts FROM dead_letters ORDER BY "offset"`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var offset, attempts int
		if err := rows.Scan(&offset, &attempts); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d:%d", offset, attempts))
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	if got := pgtest.Types(pgtest.Emitted(e.t, e.db, "")); len(got) != len(out) || slices.ContainsFunc(got, func(t string) bool { return t != "DeadLettered" }) {
		e.t.Errorf("outbox %v, want one DeadLettered per dead letter %v", got, out)
	}
	return out
}

// state is everything the handlers and the dead letters wrote, as text.
func (e *batchEnv) state() string {
	e.t.Helper()
	var b strings.Builder
	rows, err := e.db.Query(`SELECT event_id, xid, in_batch, times FROM applied ORDER BY event_id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id      string
			xid     int64
			inBatch bool
			times   int
		)
		if err := rows.Scan(&id, &xid, &inBatch, &times); err != nil {
			e.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %v %d\n", id, xid, inBatch, times)
	}
	fmt.Fprintf(&b, "inbox %d, dead letters %v, outbox %d\n", pgtest.Count(e.t, e.db, `SELECT count(*) FROM processed_events`),
		e.deadLetters(), pgtest.Count(e.t, e.db, `SELECT count(*) FROM outbox_seen`))
	return b.String()
}

// total sums the series of metric name in reg.
func total(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// counting returns batch, counting its runs in runs.
func counting(batch kafka.BatchFunc, runs *atomic.Int32) kafka.BatchFunc {
	return func(ctx context.Context, fn func(ctx context.Context) error) error {
		runs.Add(1)
		return batch(ctx, fn)
	}
}

// TestConsumerBatches runs records that wait together in a claim's buffer (behind a gate)
// through a consumer with a batch size, against the stack's Kafka and a database of the test's
// own, and checks which records committed together (wantTx, by record index), what was
// dead-lettered (wantDead, "offset:attempts"; the gate is offset 0), how many batch
// transactions ran and rolled back, and that every record took effect and was counted once.
func TestConsumerBatches(t *testing.T) {
	tests := []struct {
		name          string
		batchMax      int
		noBatch       bool // no Batch func: batches are off whatever BatchMax says
		records       []string
		wantTx        []string
		wantDead      []string
		wantRuns      int32 // batch transactions begun (Batch calls)
		wantRollbacks float64
		redeliver     bool // then consume the whole topic again in a new group: nothing changes
	}{
		{name: "what the claim buffered commits once", batchMax: 16,
			records: []string{"ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"},
			wantTx:  []string{"0 1 2 3 4 5 6 7 batched"}, wantRuns: 1, redeliver: true},
		{name: "at most BATCH_MAX records a transaction", batchMax: 3,
			records: []string{"ok", "ok", "ok", "ok", "ok", "ok", "ok"},
			wantTx:  []string{"0 1 2 batched", "3 4 5 batched", "6"}, wantRuns: 2},
		{name: "BATCH_MAX=1 is one by one", batchMax: 1,
			records: []string{"ok", "ok", "ok", "ok"},
			wantTx:  []string{"0", "1", "2", "3"}},
		{name: "no batch transaction is one by one", batchMax: 16, noBatch: true,
			records: []string{"ok", "ok", "ok"},
			wantTx:  []string{"0", "1", "2"}},
		{name: "undecodable in the middle", batchMax: 16,
			records: []string{"ok", "ok", "undecodable", "ok", "ok"},
			wantTx:  []string{"0", "1", "3", "4"}, wantDead: []string{"3:1"}, wantRuns: 1, wantRollbacks: 1, redeliver: true},
		{name: "a Permanent error in the middle", batchMax: 16,
			records: []string{"ok", "ok", "poison", "ok", "ok"},
			wantTx:  []string{"0", "1", "3", "4"}, wantDead: []string{"3:1"}, wantRuns: 1, wantRollbacks: 1},
		{name: "a panic in the middle", batchMax: 16,
			records: []string{"ok", "panics", "ok"},
			wantTx:  []string{"0", "2"}, wantDead: []string{"2:3"}, wantRuns: 1, wantRollbacks: 1},
		{name: "a transient failure in the middle", batchMax: 16,
			records: []string{"ok", "failsOnce", "ok"},
			wantTx:  []string{"0", "1", "2"}, wantRuns: 1, wantRollbacks: 1},
		{name: "a handler that joins no batch splits the batch", batchMax: 16,
			records: []string{"ok", "ok", "alone", "ok", "ok"},
			wantTx:  []string{"0 1 batched", "2", "3 4 batched"}, wantRuns: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newBatchEnv(t, 1)
			var (
				runs  atomic.Int32
				batch kafka.BatchFunc
			)
			if !tt.noBatch {
				batch = counting(msgpg.Batches(e.db), &runs)
			}
			entered := e.gate(0, len(tt.records))
			group, stop := e.consume(tt.batchMax, batch)
			waitEntered(t, entered)
			ids := e.records(0, tt.records...)
			end := int64(len(tt.records) + 1)
			e.waitCommitted(group, end, 0)
			stop()

			if got := e.transactions(ids); !slices.Equal(got, tt.wantTx) {
				t.Errorf("transactions %q, want %q", got, tt.wantTx)
			}
			if got := e.deadLetters(); !slices.Equal(got, tt.wantDead) {
				t.Errorf("dead letters %v, want %v", got, tt.wantDead)
			}
			if got := runs.Load(); got != tt.wantRuns {
				t.Errorf("%d batch transactions, want %d", got, tt.wantRuns)
			}
			if got := total(t, e.reg, "messaging_batch_rollbacks_total"); got != tt.wantRollbacks {
				t.Errorf("%v batch rollbacks counted, want %v", got, tt.wantRollbacks)
			}
			if got := total(t, e.reg, "messaging_events_handled_total"); got != float64(end) {
				t.Errorf("%v messages counted as handled, want each of %d once", got, end)
			}
			if !tt.redeliver {
				return
			}
			before := e.state()
			group, stop = e.consume(tt.batchMax, batch)
			e.waitCommitted(group, end, 0)
			stop()
			if after := e.state(); after != before {
				t.Errorf("consuming everything again changed\n%s\ninto\n%s", before, after)
			}
		})
	}
}

// TestConsumerBatchDeadlock: on each of two partitions, a batch of two records that lock one row
// each, the same two rows in opposite orders. Each record alone cannot deadlock, but in a batch
// the locks accumulate until the commit: once both first records hold their rows, Postgres aborts
// one batch with a deadlock (40P01). The winner commits in one transaction; the loser rolls back
// and goes one by one, waiting for the winner; nothing is dead-lettered and every record takes
// effect once.
func TestConsumerBatchDeadlock(t *testing.T) {
	e := newBatchEnv(t, 2)
	gates := []<-chan struct{}{e.gate(0, 2), e.gate(1, 2)}
	group, stop := e.consume(16, msgpg.Batches(e.db))
	waitEntered(t, gates...)
	meet := newBarrier(2)
	var ids []string
	for p, locks := range [][]string{{"a", "b"}, {"b", "a"}} {
		for i, id := range e.records(int32(p), "ok", "ok") {
			b := behaviour{lock: locks[i]}
			if i == 0 {
				b.meet = meet
			}
			e.mu.Lock()
			e.behaviour[id] = b
			e.mu.Unlock()
			ids = append(ids, id)
		}
	}
	e.waitCommitted(group, 3, 0, 1)
	stop()

	got := e.transactions(ids)
	winner := []string{"0 1 batched", "2", "3"}
	if got[0] != "0 1 batched" {
		winner = []string{"0", "1", "2 3 batched"}
	}
	if !slices.Equal(got, winner) {
		t.Errorf("transactions %q, want one partition's batch and the other's records one by one", got)
	}
	if dead := e.deadLetters(); len(dead) != 0 {
		t.Errorf("dead letters %v, want none (a deadlock is no poison)", dead)
	}
	e.mu.Lock()
	deadlocks := e.deadlocks
	e.mu.Unlock()
	if deadlocks != 1 || total(t, e.reg, "messaging_batch_rollbacks_total") != 1 {
		t.Errorf("%d deadlocks and %v batch rollbacks, want 1 and 1", deadlocks, total(t, e.reg, "messaging_batch_rollbacks_total"))
	}
}
