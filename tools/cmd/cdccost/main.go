// Command cdccost measures what Kafka Connect (with the Debezium connector and the outbox
// router) spends per event: it measures the worker's idle CPU, writes N outbox rows straight
// into a service database, waits until all of them are on their topic, and reports the
// worker's CPU per event with the idle burn of the same duration subtracted.
//
//	go run ./cmd/cdccost -events 20000                 # the connector as registered
//	go run ./cmd/cdccost -events 20000 -config ../connectors/order-outbox.json   # PUT this config first
//
// The rows use aggregate type "cdccost" (topic cdccost-events, which nobody consumes) and an
// OrderCreated-sized envelope. The tool creates that topic if it is missing, as the stack's
// test-only Kafka principal (injector): Kafka Connect may write it but not create it. CPU comes from /proc/<pid>/stat of the pid in
// $STACK_DIR/pids/connect.pid.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	_ "github.com/lib/pq"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/debezium"
	"outboxsaga.dev/tools/stackenv"
)

const topic = "cdccost-events"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cdccost:", err)
		os.Exit(1)
	}
}

func run() error {
	env := stackenv.Load().As(stackenv.Injector)
	events := flag.Int("events", 20000, "outbox rows to write")
	batch := flag.Int("batch", 20, "rows per transaction")
	db := flag.String("db", "order_db", "service database whose outbox gets the rows")
	connector := flag.String("connector", "order-outbox", "the connector that streams that database")
	config := flag.String("config", "", "connector JSON to PUT before measuring (A/B runs)")
	idle := flag.Duration("idle", 15*time.Second, "how long to measure the idle burn")
	flag.Parse()

	ctx := context.Background()
	if *config != "" {
		if err := putConfig(ctx, env, *connector, *config); err != nil {
			return err
		}
		fmt.Printf("registered %s from %s; letting it settle\n", *connector, *config)
		time.Sleep(10 * time.Second)
	}
	pid, err := env.Pid("connect")
	if err != nil {
		return err
	}
	conn, err := sql.Open("postgres", env.AdminURL(*db))
	if err != nil {
		return err
	}
	defer conn.Close()
	client, err := env.NewKafkaClient(sarama.NewConfig())
	if err != nil {
		return err
	}
	defer client.Close()
	if err := createTopic(client); err != nil {
		return err
	}

	// One row first: once it is on the topic, the connector streams and the count has a base.
	if err := insert(ctx, conn, 1, 1); err != nil {
		return err
	}
	before, err := waitCount(ctx, client, -1, 0, time.Minute)
	if err != nil {
		return err
	}

	c0, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	time.Sleep(*idle)
	c1, _ := cpuTicks(pid)
	idleRate := float64(c1-c0) / idle.Seconds() // ticks per second

	start := time.Now()
	if err := insert(ctx, conn, *events, *batch); err != nil {
		return err
	}
	wrote := time.Since(start)
	if _, err := waitCount(ctx, client, before, int64(*events), 5*time.Minute); err != nil {
		return err
	}
	elapsed := time.Since(start)
	c2, _ := cpuTicks(pid)
	busy := float64(c2-c1) - idleRate*elapsed.Seconds()
	msPerTick := 1000.0 / 100 // USER_HZ
	fmt.Printf("connector %s: %d events written in %s, on %s after %s\n", *connector, *events, wrote.Round(time.Millisecond), topic, elapsed.Round(time.Millisecond))
	fmt.Printf("Connect idle: %.1f %% of a core; during the run: %.0f ms CPU of which %.0f ms above idle\n",
		idleRate*msPerTick/10, float64(c2-c1)*msPerTick, busy*msPerTick)
	fmt.Printf("Connect CPU per event: %.3f ms\n", busy*msPerTick/float64(*events))
	return nil
}

// createTopic creates the topic the rows go to, unless it exists: one partition, like the other
// test topics.
func createTopic(client sarama.Client) error {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// insert writes n outbox rows, batch per transaction, the way InsertOutbox does (insert and
// delete in the same transaction).
func insert(ctx context.Context, db *sql.DB, n, batch int) error {
	for done := 0; done < n; {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for i := 0; i < batch && done < n; i, done = i+1, done+1 {
			tp := messaging.NewTraceparent()
			id := uuid.NewString()
			e, err := messaging.NewEnvelope("cdccost", id, "OrderCreated", 1, map[string]any{
				"orderId": id, "customerId": "customer-" + strconv.Itoa(done), "currency": "KRW", "amount": 45000,
				"paymentToken": "tok_ok", "items": []map[string]any{
					{"sku": "A100", "qty": 1, "unitPrice": 15000}, {"sku": "B200", "qty": 2, "unitPrice": 15000},
				},
			}, tp)
			if err != nil {
				tx.Rollback()
				return err
			}
			payload, _ := json.Marshal(e)
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, traceparent)
				VALUES ($1, 'cdccost', $2, 'OrderCreated', $3, $4)`, e.EventID, id, string(payload), tp.String()); err != nil {
				tx.Rollback()
				return fmt.Errorf("insert outbox: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = $1`, e.EventID); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// waitCount waits until the topic holds at least base+n records (base < 0: until it exists)
// and returns the count.
func waitCount(ctx context.Context, client sarama.Client, base, n int64, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	for {
		_ = client.RefreshMetadata(topic)
		total, err := count(client)
		if err == nil && (base < 0 && total > 0 || base >= 0 && total >= base+n) {
			return total, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s holds %d records after %s, want %d (err %v)", topic, total, timeout, base+n, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func count(client sarama.Client) (int64, error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range parts {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		total += hw
	}
	return total, nil
}

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(pid int) (int64, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	k, _ := strconv.ParseInt(fields[12], 10, 64)
	return u + k, nil
}

// putConfig PUTs the config of the connector JSON file as connector name, logged in to the REST
// API as env's user.
func putConfig(ctx context.Context, env stackenv.Env, name, file string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var c struct {
		Config map[string]string `json:"config"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return debezium.NewClient(env.ConnectURL, env.ConnectRESTUser, env.ConnectRESTPassword).PutConfig(ctx, name, c.Config)
}
