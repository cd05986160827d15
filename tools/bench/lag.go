package bench

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/tools/invariant"
	"outboxsaga.dev/tools/stackenv"
)

// LagSample is the pipeline's backlog at one instant.
type LagSample struct {
	At time.Time
	// Consumer is the summed lag of the service consumer groups (high-water mark − committed
	// offset over every partition of the saga topics), in messages.
	Consumer int64
	// Slot is the largest replication slot lag (current WAL LSN − confirmed flush LSN), in bytes.
	Slot int64
}

// LagSampler samples consumer-group lag (through a sarama admin client) and replication slot lag
// (pg_replication_slots over the admin connection).
type LagSampler struct {
	client sarama.Client
	admin  sarama.ClusterAdmin
	db     *sql.DB
	groups []string
	topics []string
}

// NewLagSampler connects to Kafka (as env's principal: the viewer may describe every group) and
// Postgres. groups are the consumer groups to sum (the services'), topics the topics they consume.
func NewLagSampler(env stackenv.Env, db *sql.DB, groups, topics []string) (*LagSampler, error) {
	client, err := env.NewKafkaClient(sarama.NewConfig())
	if err != nil {
		return nil, fmt.Errorf("lag sampler: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("lag sampler: admin client: %w", err)
	}
	return &LagSampler{client: client, admin: admin, db: db, groups: groups, topics: topics}, nil
}

// Close closes the Kafka connections.
func (s *LagSampler) Close() error {
	return s.admin.Close()
}

// Sample reads both lags once.
func (s *LagSampler) Sample(ctx context.Context) (LagSample, error) {
	out := LagSample{At: time.Now()}
	hwm, err := invariant.HighWaterMarks(s.client, s.topics)
	if err != nil {
		return out, err
	}
	for _, g := range s.groups {
		resp, err := s.admin.ListConsumerGroupOffsets(g, nil)
		if err != nil {
			return out, fmt.Errorf("offsets of group %s: %w", g, err)
		}
		for topic, blocks := range resp.Blocks {
			for p, b := range blocks {
				if hw, ok := hwm[topic][p]; ok && b.Offset >= 0 {
					out.Consumer += max(hw-b.Offset, 0)
				}
			}
		}
	}
	err = s.db.QueryRowContext(ctx, `
		SELECT COALESCE(max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)), 0)::bigint
		FROM pg_replication_slots WHERE slot_type = 'logical' AND database NOT LIKE 'bench_%'`).Scan(&out.Slot)
	if err != nil {
		return out, fmt.Errorf("slot lag: %w", err)
	}
	return out, nil
}

// ServiceGroups returns the consumer groups of the services (every group but the Connect
// worker's and the bench's own) that have members: a stopped service's group is left out.
func (s *LagSampler) ServiceGroups() ([]string, error) {
	gs, err := s.admin.ListConsumerGroups()
	if err != nil {
		return nil, fmt.Errorf("list consumer groups: %w", err)
	}
	var names []string
	for g := range gs {
		if strings.HasSuffix(g, "-service") {
			names = append(names, g)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	// A group without members is a service that is stopped (a pair with one service off): its
	// lag only grows, and the pipeline the bench measures does not wait for it.
	desc, err := s.admin.DescribeConsumerGroups(names)
	if err != nil {
		return nil, fmt.Errorf("describe consumer groups: %w", err)
	}
	var out []string
	for _, d := range desc {
		if len(d.Members) > 0 {
			out = append(out, d.GroupId)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Run samples every interval until ctx is done and returns the samples.
func (s *LagSampler) Run(ctx context.Context, interval time.Duration) []LagSample {
	var (
		mu  sync.Mutex
		out []LagSample
	)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if smp, err := s.Sample(ctx); err == nil {
			mu.Lock()
			out = append(out, smp)
			mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
	}
}

// Flatness judges a series of lag samples: flat when the mean of the last third is no more than
// twice the mean of the first third plus slack (a backlog that grows through the run is not
// flat; the sawtooth of periodic offset commits and slot flushes is).
func Flatness(vals []int64, slack int64) (first, last float64, flat bool) {
	if len(vals) < 3 {
		return 0, 0, false
	}
	third := len(vals) / 3
	mean := func(v []int64) float64 {
		var s int64
		for _, x := range v {
			s += x
		}
		return float64(s) / float64(len(v))
	}
	first, last = mean(vals[:third]), mean(vals[len(vals)-third:])
	return first, last, last <= 2*first+float64(slack)
}
