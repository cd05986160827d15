package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"admin-token": "adm\n", "secrets/connect-rest-operator": "cpw", "secrets/kafka-viewer": "kpw\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// make test runs with the stack's settings exported (scripts/lib.sh: CONSOLE_ADDR,
	// CONSOLE_<SVC>_URL, ...); the defaults under test need them unset.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "CONSOLE_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for _, k := range []string{"ADMIN_TOKEN", "CONNECT_REST_PASSWORD", "CONNECT_URL", "KAFKA_BROKERS", "ORDER_URL", "PAYMENT_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("STACK_DIR", dir)
	t.Setenv("CONSOLE_ORDER_URL", "http://127.0.0.1:11080/")
	t.Setenv("INVENTORY_URL", "http://127.0.0.1:11081")
	t.Setenv("CONSOLE_CONNECT_URL", "http://127.0.0.1:11083")
	t.Setenv("CONSOLE_KAFKA_BROKERS", "127.0.0.1:12092,127.0.0.1:12095")
	cfg, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminToken != "adm" || cfg.ConnectPass != "cpw" || cfg.KafkaPass != "kpw" || cfg.KafkaUser != "viewer" {
		t.Errorf("secrets from STACK_DIR: %q %q %q as %q", cfg.AdminToken, cfg.ConnectPass, cfg.KafkaPass, cfg.KafkaUser)
	}
	if cfg.ServiceURLs["order"] != "http://127.0.0.1:11080" || cfg.ServiceURLs["inventory"] != "http://127.0.0.1:11081" ||
		cfg.ServiceURLs["payment"] != "http://127.0.0.1:8082" {
		t.Errorf("service URLs: %v", cfg.ServiceURLs)
	}
	if cfg.ConnectURL != "http://127.0.0.1:11083" || len(cfg.Brokers) != 2 || cfg.Addr != "127.0.0.1:8090" {
		t.Errorf("connect %q brokers %v addr %q", cfg.ConnectURL, cfg.Brokers, cfg.Addr)
	}

	t.Setenv("STACK_DIR", "")
	if _, err := load(); err == nil {
		t.Error("no operator token anywhere: load succeeded, want an error")
	}
}
