// Package kafka is the consumer runtime of every service: a sarama consumer group that hands each
// message to a messaging.Handler, and the middleware that makes handling safe (decode and
// validate, recover, retry, dead-letter, log, metrics).
//
// Delivery is at least once. An offset is marked only after the handler returned nil, which for a
// postgres.Transactional handler means after its transaction committed; marked offsets are
// committed every second and when the consumer stops. A crash between a commit and the offset
// commit redelivers the message, and the inbox (processed_events) turns the redelivery into a
// no-op. Services never produce to Kafka: their events leave through the outbox.
//
// A service's handler chain, outermost first:
//
//	h := messaging.Chain(router.Dispatch,
//		kafka.Log(logger, keyed),                // one line per message, with its outcome
//		kafka.Metrics(registry),           // counters, latency, lag
//		kafka.DeadLetter(deadLetters, svc), // give up: store, emit DeadLettered, move on
//		kafka.Retry(5, 200*time.Millisecond, 5*time.Second, postgres.IsUnavailable),
//		kafka.Recover(),                   // a panic becomes an error (and is retried)
//		kafka.Decode(validator),           // bytes → Envelope; poison is Permanent
//	)
//
// Decode sits inside DeadLetter so that undecodable and schema-invalid messages take the same
// dead-letter path as any other poison and never stop a partition.
//
// With BatchMax above 1, a partition's messages that have arrived already are handled in batches
// of up to BatchMax in one transaction with one commit (HandleBatch); any error rolls a batch back
// and its messages are handled one by one as above.
package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
)

// NewConfig returns the sarama configuration the services use: start from the oldest offset when
// the group has none, sticky partition assignment, a 6 s session timeout, offsets marked by the runtime and committed
// every second, consumer errors returned to the runtime, and no topic auto-creation (consumers
// wait for the topics instead). With a username it logs in over SASL/SCRAM-SHA-512 (Authenticate):
// the stack's broker takes no client without.
func NewConfig(clientID, username, password string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = clientID
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = true
	cfg.Consumer.Offsets.AutoCommit.Interval = time.Second
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	// A crashed member holds its partitions until its session times out; 6 s (the broker's
	// group.min.session.timeout.ms) instead of sarama's 10 s shortens that stall.
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 2 * time.Second
	cfg.Consumer.Return.Errors = true
	// Size limits agree end to end (docs/architecture.md): a record is at most 1 MiB (the
	// broker's message.max.bytes); a fetch asks for 1 MiB per partition and may grow to 2 MiB,
	// so the largest record always fits in one fetch.
	cfg.Consumer.Fetch.Default = MaxRecordBytes
	cfg.Consumer.Fetch.Max = 2 * MaxRecordBytes
	cfg.Metadata.AllowAutoTopicCreation = false
	// Only committed records: under exactly-once source (the cluster topology) a Connect task
	// that dies mid-transaction leaves records that are aborted, never delivered. Without
	// transactions every record is committed, and this changes nothing.
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	return Authenticate(cfg, username, password)
}

// MaxRecordBytes is the largest Kafka record of the stack: the broker's message.max.bytes, every
// topic's max.message.bytes and Connect's max.request.size.
const MaxRecordBytes = 1 << 20

// Consumer consumes Topics as member of consumer group Group and runs Handler for every message,
// one goroutine per claimed partition, so the messages of one key (one order) are handled in order.
// Handler receives raw messages (Value, Key, Headers, ...) and must decode them: put Decode in its
// chain. Set the fields, then call Run; do not copy a Consumer after that.
type Consumer struct {
	Brokers []string
	Group   string
	Topics  []string
	// Service names the client (sarama ClientID) and the log lines.
	Service string
	// Username and Password are the service's Kafka principal (SASL/SCRAM-SHA-512); an empty
	// Username connects without authentication.
	Username, Password string
	Handler            messaging.Handler
	Logger             zerolog.Logger
	// Config overrides NewConfig(Service, Username, Password) when set.
	Config *sarama.Config
	// MaxBackoff caps the wait before rejoining after an error; 0 means 5 s (a broker back from a
	// crash should not wait long for its consumers).
	MaxBackoff time.Duration
	// BatchMax is the most messages of one partition claim handled in one transaction. When it is
	// above 1 and Batch is set, the claim takes, with each message, what it has buffered after it
	// (never waiting for more), up to BatchMax messages, and hands them to HandleBatch. 0 or 1:
	// each message on its own.
	BatchMax int
	// Batch runs a batch's transaction: messaging/postgres.Batches over the service's database.
	Batch BatchFunc
	// Registry, when set, gets messaging_consumer_lag refreshed every LagInterval (0: 5 s) for
	// each claimed partition, between messages too: a consumer stuck on one message, or one that
	// gets nothing, still shows how far behind it is (the alert ConsumerLagGrowing reads it).
	Registry    prometheus.Registerer
	LagInterval time.Duration

	mu       sync.Mutex
	joined   bool
	notReady error
}

// Run consumes until ctx is done, then returns nil after the group's offsets are committed. It
// rejoins with exponential backoff on every error: brokers down, topics not created yet, or a
// handler that returned an error (its message is not marked and comes again).
func (c *Consumer) Run(ctx context.Context) error {
	if len(c.Brokers) == 0 || c.Group == "" || len(c.Topics) == 0 || c.Handler == nil {
		return errors.New("kafka consumer: Brokers, Group, Topics and Handler are required")
	}
	cfg := c.Config
	if cfg == nil {
		cfg = NewConfig(c.Service, c.Username, c.Password)
	}
	maxBackoff := c.MaxBackoff
	if maxBackoff == 0 {
		maxBackoff = 5 * time.Second
	}
	c.setReady(false, errors.New("not joined yet"))
	log := c.Logger.With().Str("group", c.Group).Strs("topics", c.Topics).Logger()
	for failures := 1; ; failures++ {
		joined, err := c.session(ctx, cfg, log)
		if ctx.Err() != nil {
			return nil
		}
		if joined {
			failures = 1
		}
		c.setReady(false, err)
		wait := backoff(failures, 500*time.Millisecond, maxBackoff)
		log.Warn().Err(err).Dur("retryIn", wait).Msg("consumer group stopped; rejoining")
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// Ready returns nil while the consumer is a member of its group, and otherwise the reason it is
// not (for /readyz).
func (c *Consumer) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.joined {
		return nil
	}
	if c.notReady == nil {
		return errors.New("kafka consumer not running")
	}
	return fmt.Errorf("kafka consumer: %w", c.notReady)
}

func (c *Consumer) setReady(joined bool, why error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.joined, c.notReady = joined, why
}

// session joins the group and consumes until ctx is done or something fails. joined reports
// whether a group session was set up at least once.
func (c *Consumer) session(ctx context.Context, cfg *sarama.Config, log zerolog.Logger) (joined bool, err error) {
	group, err := sarama.NewConsumerGroup(c.Brokers, c.Group, cfg)
	if err != nil {
		return false, fmt.Errorf("connect group %s: %w", c.Group, err)
	}
	defer func() {
		if cerr := group.Close(); cerr != nil {
			log.Warn().Err(cerr).Msg("close consumer group")
		}
	}()
	go func() {
		for err := range group.Errors() {
			log.Warn().Err(err).Msg("consumer group error")
		}
	}()
	h := &groupHandler{c: c, log: log}
	for {
		if err := group.Consume(ctx, c.Topics, h); err != nil {
			return h.joined.Load(), fmt.Errorf("consume: %w", err)
		}
		if ctx.Err() != nil {
			return h.joined.Load(), nil
		}
		if err := h.failure(); err != nil {
			return h.joined.Load(), err
		}
	}
}

// groupHandler is the sarama.ConsumerGroupHandler of one group connection.
type groupHandler struct {
	c      *Consumer
	log    zerolog.Logger
	joined atomic.Bool

	mu     sync.Mutex
	failed error
}

// Setup marks the consumer ready once partitions are assigned (possibly none).
func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.joined.Store(true)
	h.c.setReady(true, nil)
	h.log.Info().Int32("generation", sess.GenerationID()).Interface("claims", sess.Claims()).Msg("joined consumer group")
	return nil
}

// Cleanup runs after every ConsumeClaim returned.
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error {
	return nil
}

// ConsumeClaim handles one partition's messages in order (HandleBatch: one by one, or in batches
// of what the claim has buffered) and marks each one after its handler returned nil and what it
// did committed. A handler error ends the session without marking, so the message comes again
// after the consumer rejoins.
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := context.WithValue(sess.Context(), highWaterMarkKey{}, claim.HighWaterMarkOffset)
	ctx = h.log.With().Str("topic", claim.Topic()).Int32("partition", claim.Partition()).Logger().WithContext(ctx)
	var pos position
	pos.offset.Store(max(claim.InitialOffset()-1, -2))
	if h.c.Registry != nil {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		g := lagGauges{
			records: consumerLag(h.c.Registry).WithLabelValues(claim.Topic(), itoa(claim.Partition())),
			seconds: consumerLagSeconds(h.c.Registry).WithLabelValues(claim.Topic(), itoa(claim.Partition())),
		}
		go watchLag(ctx, g, claim.HighWaterMarkOffset, &pos, cmp.Or(h.c.LagInterval, 5*time.Second), time.Now)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			msgs, open := h.buffered(claim, msg)
			pos.took(msgs[len(msgs)-1])
			ms := make([]*messaging.Message, len(msgs))
			for i, msg := range msgs {
				ms[i] = newMessage(msg)
			}
			err := HandleBatch(ctx, h.c.Handler, h.c.Batch, ms, func(i int) { sess.MarkMessage(msgs[i], "") })
			if err != nil {
				if ctx.Err() != nil {
					return nil // rebalance or shutdown: not marked, handled again later
				}
				h.mu.Lock()
				h.failed = err
				h.mu.Unlock()
				return err
			}
			if !open {
				return nil
			}
		}
	}
}

// buffered returns first and, when the consumer batches, the messages the claim has buffered
// after it, up to BatchMax in all, without waiting for more. open is false when the claim's
// channel closed.
func (h *groupHandler) buffered(claim sarama.ConsumerGroupClaim, first *sarama.ConsumerMessage) (msgs []*sarama.ConsumerMessage, open bool) {
	msgs = []*sarama.ConsumerMessage{first}
	for h.c.Batch != nil && len(msgs) < h.c.BatchMax {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return msgs, false
			}
			msgs = append(msgs, msg)
		default:
			return msgs, true
		}
	}
	return msgs, true
}

// failure returns (and clears) the error that ended the last session, if a handler failed.
func (h *groupHandler) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.failed
	h.failed = nil
	return err
}

// newMessage copies a Kafka record into an undecoded Message.
func newMessage(msg *sarama.ConsumerMessage) *messaging.Message {
	headers := make(map[string]string, len(msg.Headers))
	for _, rh := range msg.Headers {
		if rh != nil {
			headers[string(rh.Key)] = string(rh.Value)
		}
	}
	m := &messaging.Message{
		Record: messaging.Record{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset, Key: string(msg.Key), Headers: headers, Value: msg.Value},
	}
	if tp, err := messaging.ParseTraceparent(headers["traceparent"]); err == nil {
		m.Traceparent = tp
	}
	return m
}

// position is where a claim stands: the offset and the (log append) time of the last record
// taken from it.
type position struct {
	offset atomic.Int64 // before any record: the one before the claim's first; -2: unknown (a sentinel such as OffsetNewest)
	at     atomic.Int64 // Unix nanoseconds; 0 before any record
}

// took records msg as the last record taken.
func (p *position) took(msg *sarama.ConsumerMessage) {
	p.at.Store(msg.Timestamp.UnixNano())
	p.offset.Store(msg.Offset)
}

// lagGauges are one partition's lag in records and in seconds.
type lagGauges struct{ records, seconds prometheus.Gauge }

// watchLag sets, every interval until ctx is done, the partition's lag in records (high-water
// mark − last offset taken − 1) and in seconds (while records wait: how long ago the last record
// taken was appended; 0 when caught up). Nothing is set while the position is unknown or the
// high-water mark not fetched yet.
func watchLag(ctx context.Context, g lagGauges, hwm func() int64, pos *position, every time.Duration, now func() time.Time) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l, h := pos.offset.Load(), hwm()
			if l < -1 || h <= 0 {
				continue
			}
			lag := max(h-l-1, 0)
			g.records.Set(float64(lag))
			secs := 0.0
			if at := pos.at.Load(); lag > 0 && at > 0 {
				secs = max(now().Sub(time.Unix(0, at)).Seconds(), 0)
			}
			g.seconds.Set(secs)
		}
	}
}

// highWaterMarkKey carries the claim's HighWaterMarkOffset func to Metrics (consumer lag).
type highWaterMarkKey struct{}
