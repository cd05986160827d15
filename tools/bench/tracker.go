package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/tools/stackenv"
)

// record is what the tracker keeps of one saga event seen on Kafka.
type record struct {
	topic      string
	eventType  string
	occurredAt time.Time // envelope occurredAt: set just before the outbox insert commits
	appended   time.Time // Kafka record timestamp (the broker's append time with LogAppendTime)
	seen       time.Time // when the tracker received it
}

// terminal is an order's terminal event as the tracker saw it.
type terminal struct {
	eventType string
	seen      time.Time
}

// Tracker consumes the saga topics from their current end (a plain sarama consumer, one
// goroutine per partition, no group) and remembers, per event id, when the event was committed,
// appended and seen, and, per order, when its terminal event (OrderCompleted or OrderCanceled)
// arrived on order-events.
type Tracker struct {
	consumer sarama.Consumer
	parts    []sarama.PartitionConsumer

	mu        sync.Mutex
	records   map[string]record
	terminals map[string]terminal
	waiters   map[string]chan struct{}
	decodeErr int
}

// NewTracker starts consuming topics at their newest offsets and returns once every partition
// consumer is running, so every event written after NewTracker returns is seen.
// It reads as env's principal (the viewer).
func NewTracker(env stackenv.Env, topics []string) (*Tracker, error) {
	cfg := sarama.NewConfig()
	cfg.ClientID = "bench-tracker"
	cfg.Consumer.Return.Errors = false
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Fetch.Default = 1 << 20
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted // what the services see
	c, err := sarama.NewConsumer(env.Brokers, env.SaramaConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("tracker: connect to %v as %q: %w", env.Brokers, env.KafkaUsername, err)
	}
	t := &Tracker{
		consumer: c, records: map[string]record{}, terminals: map[string]terminal{},
		waiters: map[string]chan struct{}{},
	}
	for _, topic := range topics {
		parts, err := c.Partitions(topic)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("tracker: partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			pc, err := c.ConsumePartition(topic, p, sarama.OffsetNewest)
			if err != nil {
				t.Close()
				return nil, fmt.Errorf("tracker: consume %s/%d: %w", topic, p, err)
			}
			t.parts = append(t.parts, pc)
			go t.loop(pc)
		}
	}
	return t, nil
}

// Close stops every partition consumer.
func (t *Tracker) Close() error {
	var errs []error
	for _, pc := range t.parts {
		errs = append(errs, pc.Close())
	}
	errs = append(errs, t.consumer.Close())
	return errors.Join(errs...)
}

func (t *Tracker) loop(pc sarama.PartitionConsumer) {
	for msg := range pc.Messages() {
		t.observe(msg, time.Now())
	}
}

// envelopeHead is the part of the envelope the tracker reads.
type envelopeHead struct {
	EventID     string    `json:"eventId"`
	EventType   string    `json:"eventType"`
	AggregateID string    `json:"aggregateId"`
	OccurredAt  time.Time `json:"occurredAt"`
}

func (t *Tracker) observe(msg *sarama.ConsumerMessage, seen time.Time) {
	var e envelopeHead
	if err := json.Unmarshal(msg.Value, &e); err != nil || e.EventID == "" {
		t.mu.Lock()
		t.decodeErr++
		t.mu.Unlock()
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.records[e.EventID]; !dup {
		t.records[e.EventID] = record{
			topic: msg.Topic, eventType: e.EventType, occurredAt: e.OccurredAt, appended: msg.Timestamp, seen: seen,
		}
	}
	if msg.Topic != "order-events" || (e.EventType != "OrderCompleted" && e.EventType != "OrderCanceled") {
		return
	}
	if _, dup := t.terminals[e.AggregateID]; dup {
		return
	}
	t.terminals[e.AggregateID] = terminal{eventType: e.EventType, seen: seen}
	if w, ok := t.waiters[e.AggregateID]; ok {
		close(w)
		delete(t.waiters, e.AggregateID)
	}
}

// Terminal returns when order id's terminal event was seen and its type.
func (t *Tracker) Terminal(id string) (time.Time, string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	term, ok := t.terminals[id]
	return term.seen, term.eventType, ok
}

// WaitTerminal blocks until order id's terminal event was seen or ctx is done.
func (t *Tracker) WaitTerminal(ctx context.Context, id string) (time.Time, string, error) {
	t.mu.Lock()
	if term, ok := t.terminals[id]; ok {
		t.mu.Unlock()
		return term.seen, term.eventType, nil
	}
	w, ok := t.waiters[id]
	if !ok {
		w = make(chan struct{})
		t.waiters[id] = w
	}
	t.mu.Unlock()
	select {
	case <-w:
		seen, typ, _ := t.Terminal(id)
		return seen, typ, nil
	case <-ctx.Done():
		return time.Time{}, "", fmt.Errorf("wait for the terminal event of order %s: %w", id, ctx.Err())
	}
}

// recordsSince returns the records of events that occurred at or after since.
func (t *Tracker) recordsSince(since time.Time) map[string]record {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]record)
	for id, r := range t.records {
		if !r.occurredAt.Before(since) {
			out[id] = r
		}
	}
	return out
}
