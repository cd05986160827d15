// Package stackenv tells the tools where the running stack is: the same environment variables
// that scripts/lib.sh exports (ports move with STACK_PORT_OFFSET), with the defaults of a stack
// started by `make up` at offset 0.
package stackenv

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
)

// Env is where the stack's parts answer.
type Env struct {
	OrderURL     string
	InventoryURL string
	PaymentURL   string
	GatewayURL   string
	ConnectURL   string
	Brokers      []string
	// PGAdminURL is the superuser's URL of the postgres database.
	PGAdminURL string
	// StackDir holds the stack's pid files (pids/<component>.pid) and secrets.
	StackDir string
	// AdminToken guards the services' operator endpoints.
	AdminToken string
}

// Load reads the environment.
func Load() Env {
	root := Or("STACK_DIR", ".stack")
	return Env{
		OrderURL:     Or("ORDER_URL", "http://127.0.0.1:8080"),
		InventoryURL: Or("INVENTORY_URL", "http://127.0.0.1:8081"),
		PaymentURL:   Or("PAYMENT_URL", "http://127.0.0.1:8082"),
		GatewayURL:   Or("GATEWAY_URL", "http://127.0.0.1:8089"),
		ConnectURL:   Or("CONNECT_URL", "http://127.0.0.1:8083"),
		Brokers:      strings.Split(Or("KAFKA_BROKERS", "127.0.0.1:9092"), ","),
		PGAdminURL:   Or("PG_ADMIN_URL", "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		StackDir:     root,
		AdminToken:   os.Getenv("ADMIN_TOKEN"),
	}
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

// SaramaConfig sets what every Kafka client of the tools needs on cfg and returns it.
func (e Env) SaramaConfig(cfg *sarama.Config) *sarama.Config {
	return cfg
}
