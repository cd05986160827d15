package kafka_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/eventually"
	"outboxsaga.dev/messaging/kafka"
	"outboxsaga.dev/messaging/kafka/kafkatest"
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
			kafka.Log(logger), kafka.Metrics(prometheus.NewRegistry()), kafka.DeadLetter(store, "test"),
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
