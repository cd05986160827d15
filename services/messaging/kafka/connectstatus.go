package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/debezium"
)

// ConnectStatus follows Kafka Connect's status topic (status.storage.topic, connect-status) and
// answers the state of a connector and its tasks from it: what GET /connectors/{name}/status
// answers, without the REST API and its operator login. Connect writes a record per state change,
// keyed status-connector-<name> and status-task-<name>-<id>, with the value
// {"state":"RUNNING","trace":null,"worker_id":…,"generation":…}; a deleted connector's or task's
// key gets a tombstone. The service's own principal may read that topic (infra/kafka/acls.conf)
// and nothing else of Connect's.
//
// It is a debezium.StatusSource. Run reads the topic from its first offset and keeps
// reading; until it has caught up with the end, Status answers an error.
type ConnectStatus struct {
	Brokers  []string
	Topic    string // connect-status
	Username string
	Password string
	Log      zerolog.Logger

	mu       sync.Mutex
	states   map[string]debezium.State // by record key
	caughtUp bool
	err      error
}

var _ debezium.StatusSource = (*ConnectStatus)(nil)

// statusValue is the value of one record of the status topic.
type statusValue struct {
	State string  `json:"state"`
	Trace *string `json:"trace"`
}

// Run reads the status topic until ctx is done (then it returns nil), reconnecting after an
// error; the error is what Status answers meanwhile.
func (c *ConnectStatus) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := c.follow(ctx)
		if ctx.Err() != nil {
			break
		}
		c.mu.Lock()
		c.err, c.caughtUp = fmt.Errorf("read %s: %w", c.Topic, err), false
		c.mu.Unlock()
		c.Log.Warn().Err(err).Str("topic", c.Topic).Msg("Connect's status topic unreadable; reading it again in 2 s")
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}

// follow reads every partition of the topic from its first offset, once through to the end and
// then as records come, until ctx is done or a partition fails.
func (c *ConnectStatus) follow(ctx context.Context) error {
	cfg := NewConfig("connect-status-reader", c.Username, c.Password)
	cfg.Consumer.Return.Errors = true
	client, err := sarama.NewClient(c.Brokers, cfg)
	if err != nil {
		return fmt.Errorf("connect to %v: %w", c.Brokers, err)
	}
	defer client.Close()
	partitions, err := client.Partitions(c.Topic)
	if err != nil {
		return fmt.Errorf("partitions: %w", err)
	}
	ends := map[int32]int64{}
	for _, p := range partitions {
		if ends[p], err = client.GetOffset(c.Topic, p, sarama.OffsetNewest); err != nil {
			return fmt.Errorf("end of partition %d: %w", p, err)
		}
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer consumer.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := make(chan error, len(partitions))
	states := map[string]debezium.State{}
	var mu sync.Mutex // states and pending, shared by the partitions' loops
	pending := 0
	for p, end := range ends {
		if end > 0 {
			pending++
		}
		pc, err := consumer.ConsumePartition(c.Topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("consume partition %d: %w", p, err)
		}
		go func() {
			defer pc.AsyncClose()
			reached := end == 0
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-pc.Errors():
					fail <- e
					return
				case m := <-pc.Messages():
					mu.Lock()
					apply(states, m)
					if !reached && m.Offset+1 >= end {
						reached = true
						pending--
					}
					if pending == 0 {
						c.publish(states)
					}
					mu.Unlock()
				}
			}
		}()
	}
	if pending == 0 {
		c.publish(states)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-fail:
		return err
	}
}

// apply records one record of the status topic in states.
func apply(states map[string]debezium.State, m *sarama.ConsumerMessage) {
	key := string(m.Key)
	if m.Value == nil {
		delete(states, key)
		return
	}
	var v statusValue
	if err := json.Unmarshal(m.Value, &v); err != nil {
		return // not a status record of a connector or task (Connect writes none other here)
	}
	s := debezium.State{State: v.State}
	if v.Trace != nil {
		s.Trace = *v.Trace
	}
	states[key] = s
}

// publish makes a copy of states the one Status answers from.
func (c *ConnectStatus) publish(states map[string]debezium.State) {
	cp := make(map[string]debezium.State, len(states))
	for k, v := range states {
		cp[k] = v
	}
	c.mu.Lock()
	c.states, c.caughtUp, c.err = cp, true, nil
	c.mu.Unlock()
}

// Status returns the state of connector name and its tasks as the status topic has it;
// debezium.ErrNotFound when it has no record of the connector.
func (c *ConnectStatus) Status(_ context.Context, name string) (debezium.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return debezium.Status{}, c.err
	case !c.caughtUp:
		return debezium.Status{}, errors.New("Connect's status topic not read yet")
	}
	conn, ok := c.states["status-connector-"+name]
	if !ok {
		return debezium.Status{}, fmt.Errorf("connector %s: %w", name, debezium.ErrNotFound)
	}
	s := debezium.Status{Name: name, Connector: conn}
	if conn.State == "STOPPED" {
		return s, nil // its tasks are gone; their last records stay in the topic
	}
	prefix := "status-task-" + name + "-"
	for key, st := range c.states {
		id, err := strconv.Atoi(strings.TrimPrefix(key, prefix))
		if !strings.HasPrefix(key, prefix) || err != nil {
			continue
		}
		s.Tasks = append(s.Tasks, debezium.TaskStatus{ID: id, State: st})
	}
	sort.Slice(s.Tasks, func(i, j int) bool { return s.Tasks[i].ID < s.Tasks[j].ID })
	return s, nil
}
