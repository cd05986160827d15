// Package stackenv tells the tools where the running stack is and how to log in to it: the same
// environment variables that scripts/lib.sh exports (ports move with STACK_PORT_OFFSET), with the
// defaults of a stack started by `make up` at offset 0 (the ports of the stack's table,
// outboxsaga.dev/stack), and the stack's credentials read from its directory (.stack/, written by
// make up) when the environment does not carry them.
package stackenv

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/IBM/sarama"

	"outboxsaga.dev/messaging/kafka"
	"outboxsaga.dev/stack"
)

// The broker's principals the tools log in as (docs/architecture.md, "Who may write what").
const (
	// Viewer may read every topic and describe every consumer group: the checker, bench and
	// every lag reader.
	Viewer = "viewer"
	// Injector is the test-only principal that may also produce to the event topics, create test
	// topics and move consumer groups: the chaos tool and cdccost.
	Injector = "injector"
)

// Env is where the stack's parts answer.
type Env struct {
	OrderURL        string
	InventoryURL    string
	PaymentURL      string
	ShippingURL     string
	NotificationURL string
	// ServiceURLs holds every saga service's URL by its name (ServiceURL): <SVC>_URL, else the
	// table's default.
	ServiceURLs map[string]string
	// SinkURL is the webhook sink that stands for the notification service's outside world.
	SinkURL    string
	GatewayURL string
	ConnectURL string
	// ConnectRESTUser and ConnectRESTPassword log in to Kafka Connect's REST API (HTTP Basic):
	// CONNECT_REST_USER (operator) and CONNECT_REST_PASSWORD, else the stack's
	// secrets/connect-rest-<user> file.
	ConnectRESTUser     string
	ConnectRESTPassword string
	Brokers             []string
	// KafkaUsername and KafkaPassword are the principal the tool's Kafka clients log in as
	// (SASL/SCRAM-SHA-512): KAFKA_USERNAME and KAFKA_PASSWORD, or the one As chose.
	KafkaUsername string
	KafkaPassword string
	// PGAdminURL is the superuser's URL of the postgres database.
	PGAdminURL string
	// StackDir holds the stack's pid files (pids/<component>.pid) and secrets.
	StackDir string
	// AdminToken guards the services' operator endpoints: ADMIN_TOKEN, else the stack's
	// admin-token file.
	AdminToken string
	// GatewaySecret is the merchant's secret the gateway (simulator) wants on every /charges
	// call, its ledger's listing included: GATEWAY_MERCHANT_SECRET, else the stack's
	// secrets/gateway-merchant file.
	GatewaySecret string
	// SinkReadToken opens the webhook sink's GET /received: WEBHOOKSINK_READ_TOKEN, else the
	// stack's secrets/webhooksink-reader file.
	SinkReadToken string
}

// Load reads the environment, and what it lacks of the credentials from the stack's directory.
func Load() Env {
	dir := Or("STACK_DIR", stackDir())
	e := Env{
		OrderURL:        DefaultURL("order"),
		InventoryURL:    DefaultURL("inventory"),
		PaymentURL:      DefaultURL("payment"),
		ShippingURL:     DefaultURL("shipping"),
		NotificationURL: DefaultURL("notification"),
		ServiceURLs:     map[string]string{},
		SinkURL:         DefaultURL("webhooksink"),
		GatewayURL:      DefaultURL("gatewaysim"),
		ConnectURL:      DefaultConnectURL(),
		ConnectRESTUser: Or("CONNECT_REST_USER", "operator"),
		Brokers:         strings.Split(Or("KAFKA_BROKERS", addr(stack.KafkaPort)), ","),
		KafkaUsername:   os.Getenv("KAFKA_USERNAME"),
		KafkaPassword:   os.Getenv("KAFKA_PASSWORD"),
		PGAdminURL:      os.Getenv("PG_ADMIN_URL"),
		StackDir:        dir,
		AdminToken:      Or("ADMIN_TOKEN", readSecret(filepath.Join(dir, "admin-token"))),
		GatewaySecret:   Or("GATEWAY_MERCHANT_SECRET", readSecret(filepath.Join(dir, "secrets", "gateway-merchant"))),
		SinkReadToken:   Or("WEBHOOKSINK_READ_TOKEN", readSecret(filepath.Join(dir, "secrets", "webhooksink-reader"))),
	}
	for _, p := range stack.SagaServices() {
		e.ServiceURLs[p.Name] = DefaultURL(p.Name)
	}
	e.ConnectRESTPassword = Or("CONNECT_REST_PASSWORD", readSecret(filepath.Join(dir, "secrets", "connect-rest-"+e.ConnectRESTUser)))
	if e.PGAdminURL == "" {
		u := url.URL{Scheme: "postgres", Host: addr(stack.PostgresPort), Path: "/postgres", RawQuery: "sslmode=disable"}
		u.User = url.User("postgres")
		if pw := readSecret(filepath.Join(dir, "secrets", "pg-superuser")); pw != "" {
			u.User = url.UserPassword("postgres", pw)
		}
		e.PGAdminURL = u.String()
	}
	return e
}

// ServiceURL returns the address of a saga service of the stack's table by its name ("order",
// "shipping", ...); "" for any other name.
func (e Env) ServiceURL(name string) string { return e.ServiceURLs[name] }

// DefaultConnectURL returns Kafka Connect's REST API: CONNECT_URL when set, else its address on
// the stack at STACK_PORT_OFFSET (the stack table's ConnectPort).
func DefaultConnectURL() string {
	return Or("CONNECT_URL", "http://"+addr(stack.ConnectPort))
}

// addr returns the loopback address of a port of the stack's table on the stack this process
// belongs to: moved by STACK_PORT_OFFSET, as every port of a second stack is (a default that
// ignored it reached the stack at offset 0 from a clone's bench).
func addr(port int) string {
	off, _ := strconv.Atoi(os.Getenv("STACK_PORT_OFFSET"))
	return fmt.Sprintf("127.0.0.1:%d", port+off)
}

// DefaultURL returns the URL of the program of the stack's table called name: its URL variable
// (ORDER_URL, GATEWAY_URL, ...) when set, else its address on the stack at STACK_PORT_OFFSET; ""
// for a name the table does not have.
func DefaultURL(name string) string {
	p, ok := stack.Lookup(name)
	if !ok {
		return ""
	}
	return Or(p.URLVar, "http://"+addr(p.Port))
}

// As returns e logged in to Kafka as principal (Viewer, Injector), with its password from the
// stack's secrets, unless KAFKA_USERNAME already named the principal to be.
func (e Env) As(principal string) Env {
	if e.KafkaUsername != "" {
		return e
	}
	e.KafkaUsername = principal
	e.KafkaPassword = readSecret(filepath.Join(e.StackDir, "secrets", "kafka-"+principal))
	return e
}

// stackDir is the .stack of the repository around the working directory (the tools run from
// tools/ or the repository's root), or .stack.
func stackDir() string {
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

// readSecret returns the first line of a secret file ("" when there is none).
func readSecret(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0])
}

// Or returns the environment variable key, or def when it is unset or empty.
func Or(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// AdminURL returns the superuser's URL of database db.
func (e Env) AdminURL(db string) string {
	u, err := url.Parse(e.PGAdminURL)
	if err != nil {
		return e.PGAdminURL
	}
	u.Path = "/" + db
	return u.String()
}

// Pid returns the pid recorded for a component of the stack.
func (e Env) Pid(component string) (int, error) {
	raw, err := os.ReadFile(filepath.Join(e.StackDir, "pids", component+".pid"))
	if err != nil {
		return 0, fmt.Errorf("pid of %s: %w", component, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
	if err != nil {
		return 0, fmt.Errorf("pid of %s: %w", component, err)
	}
	return pid, nil
}

// SaramaConfig sets what every Kafka client of the tools needs on cfg and returns it: the login
// of the principal in KafkaUsername (SASL/SCRAM-SHA-512; the broker refuses anonymous clients).
// Every Kafka client of the tools is made with it.
func (e Env) SaramaConfig(cfg *sarama.Config) *sarama.Config {
	return kafka.Authenticate(cfg, e.KafkaUsername, e.KafkaPassword)
}

// NewKafkaClient connects to the brokers with cfg made ready by SaramaConfig.
func (e Env) NewKafkaClient(cfg *sarama.Config) (sarama.Client, error) {
	c, err := sarama.NewClient(e.Brokers, e.SaramaConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("kafka %v as %q: %w", e.Brokers, e.KafkaUsername, err)
	}
	return c, nil
}
