// Package kafka reads the consumer groups' lag for the console, as the broker's read-only
// principal (viewer): each group's committed offsets beside the partitions' ends, and the age
// of the oldest record a group has not consumed yet.
package kafka

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/console"
	msgkafka "outboxsaga.dev/messaging/kafka"
)

// Group is a consumer group and the topics it reads.
type Group struct {
	Name   string
	Topics []string
}

// trendLen is how many samples of each partition's lag a Reader keeps.
const trendLen = 20

// Reader reads lag and keeps each partition's recent samples (its trend).
type Reader struct {
	client   sarama.Client
	admin    sarama.ClusterAdmin
	consumer sarama.Consumer
	groups   []Group

	mu     sync.Mutex
	trends map[string][]int64
}

// Config is how a Reader logs in.
type Config struct {
	Brokers            []string
	Username, Password string
	Groups             []Group
}

// Open connects to the brokers as cfg's principal (SASL/SCRAM-SHA-512 when a username is set).
func Open(cfg Config) (*Reader, error) {
	sc := sarama.NewConfig()
	sc.ClientID = "console"
	sc.Net.DialTimeout = 3 * time.Second
	sc.Metadata.Timeout = 5 * time.Second
	sc.Consumer.Return.Errors = false
	client, err := sarama.NewClient(cfg.Brokers, msgkafka.Authenticate(sc, cfg.Username, cfg.Password))
	if err != nil {
		return nil, fmt.Errorf("kafka %v as %q: %w", cfg.Brokers, cfg.Username, err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("kafka admin: %w", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	return &Reader{client: client, admin: admin, consumer: consumer, groups: cfg.Groups, trends: map[string][]int64{}}, nil
}

// Close disconnects.
func (r *Reader) Close() error {
	r.consumer.Close()
	return r.client.Close()
}

// Lags returns every group's lag per partition, with its trend, and records the sample.
func (r *Reader) Lags() ([]console.PartitionLag, error) {
	var out []console.PartitionLag
	for _, g := range r.groups {
		parts := map[string][]int32{}
		for _, t := range g.Topics {
			ps, err := r.client.Partitions(t)
			if err != nil {
				return nil, fmt.Errorf("partitions of %s: %w", t, err)
			}
			parts[t] = ps
		}
		offsets, err := r.admin.ListConsumerGroupOffsets(g.Name, parts)
		if err != nil {
			return nil, fmt.Errorf("offsets of group %s: %w", g.Name, err)
		}
		for _, t := range g.Topics {
			for _, p := range parts[t] {
				end, err := r.client.GetOffset(t, p, sarama.OffsetNewest)
				if err != nil {
					return nil, fmt.Errorf("end of %s/%d: %w", t, p, err)
				}
				l := console.PartitionLag{Group: g.Name, Topic: t, Partition: p, Committed: -1, End: end}
				if b := offsets.GetBlock(t, p); b != nil {
					l.Committed = b.Offset
				}
				if l.Committed >= 0 {
					l.Records = max(0, end-l.Committed)
				} else if start, err := r.client.GetOffset(t, p, sarama.OffsetOldest); err == nil {
					l.Records = max(0, end-start)
				}
				if l.Records > 0 && l.Committed >= 0 {
					l.Behind = r.age(t, p, l.Committed)
				}
				l.Trend = r.sample(fmt.Sprintf("%s/%s/%d", g.Name, t, p), l.Records)
				out = append(out, l)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

// age returns how old the record at offset is (0 when it cannot be read within a second).
func (r *Reader) age(topic string, partition int32, offset int64) time.Duration {
	pc, err := r.consumer.ConsumePartition(topic, partition, offset)
	if err != nil {
		return 0
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		if m == nil || m.Timestamp.IsZero() {
			return 0
		}
		return max(0, time.Since(m.Timestamp))
	case <-time.After(time.Second):
		return 0
	}
}

// sample adds n to key's trend and returns the trend.
func (r *Reader) sample(key string, n int64) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := append(r.trends[key], n)
	if len(t) > trendLen {
		t = t[len(t)-trendLen:]
	}
	r.trends[key] = t
	return append([]int64(nil), t...)
}
