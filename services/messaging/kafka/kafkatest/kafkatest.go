// Package kafkatest connects tests to the Kafka of the running stack (make up). The broker
// authenticates every client (SASL/SCRAM-SHA-512) and authorizes it with ACLs; tests that write
// records, create topics or move consumer groups authenticate as the stack's test-only principal
// `injector` (docs/architecture.md, "Who may write what").
package kafkatest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"outboxsaga.dev/messaging/kafka"
)

// Injector is the test-only principal: it may produce to the event topics, create and delete
// test topics and move consumer groups. Nothing but tests and the chaos tool uses it.
const Injector = "injector"

// Brokers returns KAFKA_BROKERS (scripts/lib.sh exports it), default 127.0.0.1:9092.
func Brokers() []string {
	if v := os.Getenv("KAFKA_BROKERS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"127.0.0.1:9092"}
}

// Principal returns who the tests are: KAFKA_USERNAME and KAFKA_PASSWORD when set (make test
// exports the injector's), else the injector with its password from the stack's secrets.
func Principal(tb testing.TB) (username, password string) {
	tb.Helper()
	if u := os.Getenv("KAFKA_USERNAME"); u != "" {
		return u, os.Getenv("KAFKA_PASSWORD")
	}
	return Injector, Password(tb, Injector)
}

// Password returns the password of a principal of the stack's broker, from its secrets
// (<stack>/secrets/kafka-<principal>, written by make up).
func Password(tb testing.TB, principal string) string {
	tb.Helper()
	dir := StackDir()
	raw, err := os.ReadFile(filepath.Join(dir, "secrets", "kafka-"+principal))
	if errors.Is(err, fs.ErrNotExist) {
		tb.Fatalf("no password of Kafka principal %s in %s/secrets: is the stack up (make up)?", principal, dir)
	}
	if err != nil {
		tb.Fatalf("password of Kafka principal %s: %v", principal, err)
	}
	return strings.TrimSpace(string(raw))
}

// StackDir returns the stack's directory: STACK_DIR (scripts/lib.sh exports it), else the .stack
// of the repository around the working directory.
func StackDir() string {
	if d := os.Getenv("STACK_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ".stack"
	}
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "lib.sh")); err == nil {
			return filepath.Join(dir, ".stack")
		}
	}
	return ".stack"
}

// Config returns a client configuration authenticated as Principal that returns producer
// successes (acks from all replicas) and consumer errors.
func Config(tb testing.TB) *sarama.Config {
	tb.Helper()
	user, pass := Principal(tb)
	return ConfigAs(user, pass)
}

// ConfigAs is Config for any principal (an empty username: no authentication).
func ConfigAs(username, password string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "outbox-saga-test"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Return.Errors = true
	return kafka.Authenticate(cfg, username, password)
}

// Client connects to Brokers as Principal and closes the client when the test ends. If Kafka
// does not answer the test fails, unless SKIP_INTEGRATION=1, in which case it is skipped.
func Client(tb testing.TB) sarama.Client {
	tb.Helper()
	if os.Getenv("SKIP_INTEGRATION") == "1" {
		tb.Skip("SKIP_INTEGRATION=1: skipping a test that needs Kafka")
	}
	c, err := sarama.NewClient(Brokers(), Config(tb))
	if err != nil {
		tb.Fatalf("kafka at %v: %v (is the stack up? run: make up)", Brokers(), err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
