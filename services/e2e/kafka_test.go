package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/eventually"
	"outboxsaga.dev/messaging/kafka/kafkatest"
	"outboxsaga.dev/schemas"
)

var sagaTopics = []string{messaging.TopicOrder, messaging.TopicInventory, messaging.TopicPayment}

// kafkaRecord is one record of a saga topic as the tests look at it.
type kafkaRecord struct {
	messaging.Record
	Raw *sarama.ConsumerMessage
}

// recordOf copies a consumed record.
func recordOf(m *sarama.ConsumerMessage) kafkaRecord {
	h := map[string]string{}
	for _, rh := range m.Headers {
		h[string(rh.Key)] = string(rh.Value)
	}
	return kafkaRecord{Record: messaging.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Headers: h, Value: m.Value}, Raw: m}
}

// envelope is the part of the event envelope the tests read.
type envelope struct {
	EventID      string          `json:"eventId"`
	EventType    string          `json:"eventType"`
	EventVersion int             `json:"eventVersion"`
	AggregateID  string          `json:"aggregateId"`
	TraceID      string          `json:"traceId"`
	Data         json.RawMessage `json:"data"`
}

// mustKafkaClient connects as the stack's test-only principal (injector): it reads every topic,
// writes the event topics (duplicates and poison) and describes the services' groups.
func mustKafkaClient(tb testing.TB) sarama.Client {
	tb.Helper()
	return kafkatest.Client(tb)
}

// watch is a Kafka client and the next offsets of topics: what a test that reads the records its
// own requests cause starts with.
func watch(tb testing.TB, topics ...string) (sarama.Client, offsets) {
	tb.Helper()
	kc := mustKafkaClient(tb)
	return kc, snapshotOffsets(tb, kc, topics...)
}

// mustValidator is the events' JSON Schema validator (schemas/).
func mustValidator(tb testing.TB) *schemas.Validator {
	tb.Helper()
	v, err := schemas.New()
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// offsets are the next offsets of every partition of the saga topics.
type offsets map[string]map[int32]int64

func snapshotOffsets(tb testing.TB, c sarama.Client, topics ...string) offsets {
	tb.Helper()
	out := offsets{}
	for _, t := range topics {
		parts, err := c.Partitions(t)
		if err != nil {
			tb.Fatalf("partitions of %s: %v", t, err)
		}
		out[t] = map[int32]int64{}
		for _, p := range parts {
			o, err := c.GetOffset(t, p, sarama.OffsetNewest)
			if err != nil {
				tb.Fatal(err)
			}
			out[t][p] = o
		}
	}
	return out
}

// recordsFor reads the saga topics from the offsets in from and returns the records
// keyed key, once every event type in want has been seen (or fails after timeout).
func recordsFor(tb testing.TB, c sarama.Client, from offsets, key string, timeout time.Duration, want ...string) []kafkaRecord {
	tb.Helper()
	consumer, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		tb.Fatal(err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	msgs := make(chan *sarama.ConsumerMessage)
	for topic, parts := range from {
		for p, o := range parts {
			pc, err := consumer.ConsumePartition(topic, p, o)
			if err != nil {
				tb.Fatal(err)
			}
			defer pc.Close()
			go func() {
				for {
					select {
					case m, ok := <-pc.Messages():
						if !ok {
							return
						}
						select {
						case msgs <- m:
						case <-ctx.Done():
							return
						}
					case <-ctx.Done():
						return
					}
				}
			}()
		}
	}
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	var got []kafkaRecord
	for len(missing) > 0 {
		select {
		case m := <-msgs:
			if string(m.Key) != key {
				continue
			}
			r := recordOf(m)
			got = append(got, r)
			delete(missing, r.Headers["eventType"])
		case <-ctx.Done():
			tb.Fatalf("events for %s still missing after %s: %v (got %d records)", key, timeout, missing, len(got))
		}
	}
	return got
}

// produce writes records to Kafka. Only tests do this, to inject duplicates and
// poison: the services never produce, their events leave through the outbox.
func produce(tb testing.TB, c sarama.Client, msgs ...*sarama.ProducerMessage) {
	tb.Helper()
	p, err := sarama.NewSyncProducerFromClient(c)
	if err != nil {
		tb.Fatal(err)
	}
	defer p.Close()
	if err := p.SendMessages(msgs); err != nil {
		tb.Fatalf("produce: %v", err)
	}
}

// waitConsumed waits until consumer group has committed past offset on the
// partition: the message there has been handled (or dead-lettered).
func waitConsumed(tb testing.TB, c sarama.Client, group, topic string, partition int32, offset int64, timeout time.Duration) {
	tb.Helper()
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		tb.Fatal(err)
	}
	eventually.Holds(tb, timeout, func() string {
		res, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {partition}})
		if err != nil {
			return err.Error()
		}
		if b := res.GetBlock(topic, partition); b != nil && b.Offset > offset {
			return ""
		}
		return fmt.Sprintf("group %s has not committed past %s[%d]@%d", group, topic, partition, offset)
	})
}

// readFrom returns every record of topic from the offsets in from up to the current end.
func readFrom(tb testing.TB, c sarama.Client, from offsets, topic string) []kafkaRecord {
	tb.Helper()
	consumer, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		tb.Fatal(err)
	}
	defer consumer.Close()
	var out []kafkaRecord
	for p, start := range from[topic] {
		end, err := c.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			tb.Fatal(err)
		}
		if end <= start {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			tb.Fatal(err)
		}
		for off := start; off < end; {
			select {
			case m := <-pc.Messages():
				out = append(out, recordOf(m))
				off = m.Offset + 1
			case <-time.After(10 * time.Second):
				tb.Fatalf("read %s[%d] from %d: no record after 10 s", topic, p, off)
			}
		}
		pc.Close()
	}
	return out
}
