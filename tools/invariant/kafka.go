package invariant

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	_ "github.com/lib/pq" // the slot-lag query

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/tools/stackenv"
)

// SagaTopics are the topics the saga's events travel on.
var SagaTopics = []string{messaging.TopicOrder, messaging.TopicInventory, messaging.TopicPayment, messaging.TopicShipping}

// Services are the consumer services, each in its group <name>-service.
var Services = []string{"order", "inventory", "payment", "shipping", "notification", "catalog"}

// Groups maps each consumer group to the topics it reads.
var Groups = map[string][]string{
	"order-service":        {messaging.TopicInventory, messaging.TopicPayment, messaging.TopicShipping},
	"inventory-service":    {messaging.TopicOrder},
	"payment-service":      {messaging.TopicInventory, messaging.TopicOrder},
	"shipping-service":     {messaging.TopicOrder},
	"notification-service": {messaging.TopicOrder, messaging.TopicShipping, messaging.TopicDeadLetter},
	"catalog-service":      {messaging.TopicInventory, messaging.TopicOrder},
}

// NewKafkaClient connects to the stack's brokers as env's principal (env.As: the checker reads as
// the viewer, the chaos tool also writes, as the test-only injector).
func NewKafkaClient(env stackenv.Env) (sarama.Client, error) {
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Return.Errors = true
	cfg.Metadata.Retry.Max = 10
	// What the services read: committed records only (an aborted transaction of a Connect task
	// is no delivery, and no duplicate).
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	return env.NewKafkaClient(cfg)
}

// tailIdle is how long a scanned partition may deliver nothing before its remaining offsets count
// as holding no record (transaction markers, aborted records): after quiescence the records come
// in milliseconds.
const tailIdle = 5 * time.Second

// Event is one saga record as the checker sees it.
type Event struct {
	ID     string
	Type   string
	Key    string
	Offset int64 // on its partition: an order's events of one topic share a partition (its key)
}

// ScanTopics reads every saga topic from its oldest to its newest offset (as of the call) and
// calls f for each record, serially.
func ScanTopics(ctx context.Context, c sarama.Client, f func(Event)) (int, error) {
	consumer, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		return 0, fmt.Errorf("kafka consumer: %w", err)
	}
	defer consumer.Close()
	var (
		mu    sync.Mutex
		total int
		wg    sync.WaitGroup
		errs  = make(chan error, 64)
	)
	for _, topic := range SagaTopics {
		parts, err := c.Partitions(topic)
		if err != nil {
			return 0, fmt.Errorf("partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			oldest, err := c.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				return 0, fmt.Errorf("oldest offset %s[%d]: %w", topic, p, err)
			}
			newest, err := c.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return 0, fmt.Errorf("newest offset %s[%d]: %w", topic, p, err)
			}
			if newest <= oldest {
				continue
			}
			pc, err := consumer.ConsumePartition(topic, p, oldest)
			if err != nil {
				return 0, fmt.Errorf("consume %s[%d]: %w", topic, p, err)
			}
			wg.Go(func() {
				defer pc.Close()
				// The partition's last offsets may hold no record to deliver: the commit markers
				// and aborted records of Connect's transactions (exactly-once source). A partition
				// that delivers nothing for tailIdle is read to its end.
				idle := time.NewTimer(tailIdle)
				defer idle.Stop()
				for {
					select {
					case <-ctx.Done():
						errs <- fmt.Errorf("scan %s[%d]: %w", topic, p, ctx.Err())
						return
					case <-idle.C:
						return
					case m := <-pc.Messages():
						ev := eventOf(m)
						mu.Lock()
						total++
						f(ev)
						mu.Unlock()
						if m.Offset >= newest-1 {
							return
						}
						idle.Reset(tailIdle)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return total, err
	}
	return total, nil
}

// eventOf takes the event id and type from the headers, or from the envelope when a header is missing.
func eventOf(m *sarama.ConsumerMessage) Event {
	ev := Event{Key: string(m.Key), Offset: m.Offset}
	for _, h := range m.Headers {
		switch string(h.Key) {
		case "id":
			ev.ID = string(h.Value)
		case "eventType":
			ev.Type = string(h.Value)
		}
	}
	if ev.ID == "" || ev.Type == "" {
		var env struct {
			EventID   string `json:"eventId"`
			EventType string `json:"eventType"`
		}
		if json.Unmarshal(m.Value, &env) == nil {
			ev.ID, ev.Type = env.EventID, env.EventType
		}
	}
	return ev
}

// GroupLag sums, per consumer group, newest offset − committed offset over its topics' partitions.
func GroupLag(c sarama.Client) (map[string]int64, error) {
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		return nil, fmt.Errorf("kafka admin: %w", err)
	}
	if err := c.RefreshMetadata(append(SagaTopics, messaging.TopicDeadLetter)...); err != nil {
		return nil, fmt.Errorf("refresh metadata: %w", err)
	}
	out := map[string]int64{}
	for group, topics := range Groups {
		want := map[string][]int32{}
		for _, t := range topics {
			parts, err := c.Partitions(t)
			if err != nil {
				return nil, fmt.Errorf("partitions of %s: %w", t, err)
			}
			want[t] = parts
		}
		res, err := admin.ListConsumerGroupOffsets(group, want)
		if err != nil {
			return nil, fmt.Errorf("offsets of group %s: %w", group, err)
		}
		for t, parts := range want {
			for _, p := range parts {
				newest, err := c.GetOffset(t, p, sarama.OffsetNewest)
				if err != nil {
					return nil, fmt.Errorf("newest offset %s[%d]: %w", t, p, err)
				}
				committed := int64(0)
				if b := res.GetBlock(t, p); b != nil && b.Offset >= 0 {
					committed = b.Offset
				}
				out[group] += max(newest-committed, 0)
			}
		}
	}
	return out, nil
}

// HighWaterMarks returns the newest offset of every partition of topics.
func HighWaterMarks(c sarama.Client, topics []string) (map[string]map[int32]int64, error) {
	out := make(map[string]map[int32]int64, len(topics))
	for _, t := range topics {
		parts, err := c.Partitions(t)
		if err != nil {
			return nil, fmt.Errorf("partitions of %s: %w", t, err)
		}
		out[t] = make(map[int32]int64, len(parts))
		for _, p := range parts {
			o, err := c.GetOffset(t, p, sarama.OffsetNewest)
			if err != nil {
				return nil, fmt.Errorf("newest offset %s[%d]: %w", t, p, err)
			}
			out[t][p] = o
		}
	}
	return out, nil
}

// Slot is one replication slot's WAL figures.
type Slot struct {
	Name     string
	Active   bool
	Lag      int64 // current WAL − confirmed flush
	Retained int64 // current WAL − restart LSN: what the slot keeps on disk
	Status   string
}

// Slots reads pg_replication_slots.
func Slots(ctx context.Context, pgURL string) ([]Slot, error) {
	db, err := sql.Open("postgres", pgURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT slot_name, active,
		COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint,
		COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint,
		COALESCE(wal_status, '')
		FROM pg_replication_slots ORDER BY slot_name`)
	if err != nil {
		return nil, fmt.Errorf("query slots: %w", err)
	}
	defer rows.Close()
	var out []Slot
	for rows.Next() {
		var s Slot
		if err := rows.Scan(&s.Name, &s.Active, &s.Lag, &s.Retained, &s.Status); err != nil {
			return nil, fmt.Errorf("scan slot: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
