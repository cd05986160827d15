// Package consoletest is the console's test kit: where the running dev stack is and how to log
// in to it, read as tools/stackenv reads it (the environment scripts/lib.sh exports, else the
// stack's table at offset 0 and the secrets make up wrote under .stack/). It does not import
// tools/stackenv: the console's module must build without the tools module, which the image
// build (services/Dockerfile) does not copy.
package consoletest

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/messaging/customer"
	msgkafka "outboxsaga.dev/messaging/kafka"
	"outboxsaga.dev/messaging/kafka/kafkatest"
	"outboxsaga.dev/stack"
)

// The broker's principals the tests log in as.
const (
	// Viewer reads every topic and describes every group (what the console logs in as).
	Viewer = "viewer"
	// Injector is the test-only principal that may produce to the event topics and make test-
	// topics and groups.
	Injector = "injector"
)

// Stack is the running stack: its addresses and credentials.
type Stack struct {
	Dir        string
	AdminToken string
	// ServiceURLs holds each saga service's URL by name.
	ServiceURLs                  map[string]string
	ConnectURL                   string
	ConnectUser, ConnectPassword string
	Brokers                      []string
	// PGAdminURL is the superuser's URL of the postgres database.
	PGAdminURL string
}

// Load finds the stack.
func Load() Stack {
	dir := kafkatest.StackDir()
	s := Stack{
		Dir:         dir,
		AdminToken:  cmp.Or(os.Getenv("ADMIN_TOKEN"), Secret(dir, "admin-token")),
		ServiceURLs: map[string]string{},
		ConnectURL:  cmp.Or(os.Getenv("CONNECT_URL"), fmt.Sprintf("http://127.0.0.1:%d", stack.ConnectPort)),
		ConnectUser: cmp.Or(os.Getenv("CONNECT_REST_USER"), "operator"),
		Brokers:     strings.Split(cmp.Or(os.Getenv("KAFKA_BROKERS"), fmt.Sprintf("127.0.0.1:%d", stack.KafkaPort)), ","),
		PGAdminURL:  os.Getenv("PG_ADMIN_URL"),
	}
	s.ConnectPassword = cmp.Or(os.Getenv("CONNECT_REST_PASSWORD"), Secret(dir, "secrets/connect-rest-"+s.ConnectUser))
	for _, p := range stack.SagaServices() {
		s.ServiceURLs[p.Name] = cmp.Or(os.Getenv(p.URLVar), p.URL())
	}
	if s.PGAdminURL == "" {
		u := url.URL{Scheme: "postgres", Host: fmt.Sprintf("127.0.0.1:%d", stack.PostgresPort), Path: "/postgres", RawQuery: "sslmode=disable"}
		u.User = url.User("postgres")
		if pw := Secret(dir, "secrets/pg-superuser"); pw != "" {
			u.User = url.UserPassword("postgres", pw)
		}
		s.PGAdminURL = u.String()
	}
	return s
}

// URL returns saga service name's URL.
func (s Stack) URL(name string) string { return s.ServiceURLs[name] }

// AdminURL returns the superuser's URL of database db.
func (s Stack) AdminURL(db string) string {
	u, err := url.Parse(s.PGAdminURL)
	if err != nil {
		return s.PGAdminURL
	}
	u.Path = "/" + db
	return u.String()
}

// KafkaPassword returns principal's password (KAFKA_USERNAME and KAFKA_PASSWORD win when they
// name it).
func (s Stack) KafkaPassword(principal string) string {
	if os.Getenv("KAFKA_USERNAME") == principal && os.Getenv("KAFKA_PASSWORD") != "" {
		return os.Getenv("KAFKA_PASSWORD")
	}
	return Secret(s.Dir, "secrets/kafka-"+principal)
}

// Kafka returns cfg logged in as principal.
func (s Stack) Kafka(principal string, cfg *sarama.Config) *sarama.Config {
	return msgkafka.Authenticate(cfg, principal, s.KafkaPassword(principal))
}

// CustomerBearer returns "Bearer <token>" of customer c, signed with the stack's customer key
// (CUSTOMER_TOKEN_PRIVATE_KEY, else secrets/customer-token-key).
func (s Stack) CustomerBearer(c string) (string, error) {
	b64 := cmp.Or(os.Getenv(customer.PrivateKeyEnv), Secret(s.Dir, "secrets/customer-token-key"))
	if b64 == "" {
		return "", fmt.Errorf("no customer token key: %s is not set and %s has no secrets/customer-token-key", customer.PrivateKeyEnv, s.Dir)
	}
	key, err := customer.ParsePrivateKey(b64)
	if err != nil {
		return "", err
	}
	tok, err := customer.Sign(key, c, time.Hour, time.Now())
	if err != nil {
		return "", err
	}
	return "Bearer " + tok, nil
}

// Secret returns the first line of the stack's file dir/name ("" when there is none).
func Secret(dir, name string) string {
	raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	return strings.TrimSpace(line)
}
