package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"outboxsaga.dev/stack"
)

// repoStack is a throwaway stack directory whose root (configuration, ACL files, connectors) is
// this repository, with Connect's REST user.
func repoStack(t *testing.T) *Stack {
	t.Helper()
	s, _ := testStack(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.Root = root
	s.cfg.Env["CONNECT_REST_USER"] = "operator"
	return s
}

// configStack is repoStack with every program's address and the secrets the configuration
// files are written from.
func configStack(t *testing.T) *Stack {
	t.Helper()
	s := repoStack(t)
	s.cfg.Env["NOTIFICATION_URL"] = "http://127.0.0.1:8085"
	for _, p := range stack.Programs() { // every program's address, as scripts/lib.sh exports them
		s.cfg.Env[p.AddrVar] = fmt.Sprintf("127.0.0.1:%d", p.Port)
	}
	secrets := filepath.Join(s.cfg.StackDir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"kafka-connect": "kc-secret", "connect-rest-operator": "rest-secret"} {
		if err := os.WriteFile(filepath.Join(secrets, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.cfg.StackDir, "admin-token"), []byte("the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConfigureConnect(t *testing.T) {
	s := configStack(t)
	if err := s.configureConnect(); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(s.cfg.get("CONNECT_CONF"))
	for _, want := range []string{"bootstrap.servers=127.0.0.1:" + s.cfg.get("KAFKA_PORT"), "listeners=http://127.0.0.1:" + s.cfg.get("CONNECT_PORT"),
		`producer.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="connect" password="kc-secret";`} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("the worker's configuration lacks %q", want)
		}
	}
	users, _ := os.ReadFile(filepath.Join(s.cfg.StackDir, "connect", "rest-users.properties"))
	if string(users) != "operator=rest-secret\n" {
		t.Errorf("rest-users.properties = %q", users)
	}
	for _, f := range []string{s.cfg.get("CONNECT_CONF"), filepath.Join(s.cfg.StackDir, "connect", "rest-jaas.conf")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
}

func TestConfigureMonitor(t *testing.T) {
	for _, tool := range []string{"promtool", "amtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install.sh)", tool)
		}
	}
	s := configStack(t)
	for _, name := range []string{"alertmanager", "prometheus"} {
		changed, err := s.configureMonitor(name)
		if err != nil || !changed {
			t.Fatalf("configureMonitor(%s) = %v, %v; want a new configuration", name, changed, err)
		}
		if changed, err := s.configureMonitor(name); err != nil || changed {
			t.Errorf("configureMonitor(%s) again = %v, %v; want unchanged", name, changed, err)
		}
	}
	prom, _ := os.ReadFile(s.cfg.get("PROMETHEUS_CONF"))
	if !strings.Contains(string(prom), "127.0.0.1:8082") || !strings.Contains(string(prom), filepath.Join(s.cfg.Root, "infra/prometheus/rules")) {
		t.Errorf("prometheus.yml lacks the payment service's address or the rules:\n%s", prom)
	}
	token, _ := os.ReadFile(filepath.Join(s.cfg.StackDir, "alertmanager", "relay.token"))
	if string(token) != "the-token\n" {
		t.Errorf("relay.token = %q", token)
	}
}

func TestConfigureKafka(t *testing.T) {
	s := configStack(t)
	for name, v := range map[string]string{"kafka-admin": "adm", "kafka-viewer": "view", "kafka-injector": "inj"} {
		if err := os.WriteFile(filepath.Join(s.cfg.StackDir, "secrets", name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// formatted already: the test needs no Java
	if err := os.WriteFile(filepath.Join(s.cfg.StackDir, "kafka", "data", "meta.properties"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.configureKafka(context.Background()); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(s.cfg.get("KAFKA_CONF"))
	for _, want := range []string{"log.dirs=" + filepath.Join(s.cfg.StackDir, "kafka", "data"),
		"advertised.listeners=BROKER://127.0.0.1:" + s.cfg.get("KAFKA_PORT"),
		"controller.quorum.bootstrap.servers=127.0.0.1:" + s.cfg.get("KAFKA_CONTROLLER_PORT"),
		`username="admin" password="adm" user_admin="adm";`, `user_viewer="view" user_injector="inj";`} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("the broker's configuration lacks %q", want)
		}
	}
	if fi, err := os.Stat(s.cfg.get("KAFKA_CONF")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the broker's configuration: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}

// TestConfigureKafkaNode: a node of the cluster gets the cluster's overrides, its own id and
// listeners, and the static quorum of every node, with the single node's logins.
func TestConfigureKafkaNode(t *testing.T) {
	s := configStack(t)
	for name, v := range map[string]string{"kafka-admin": "adm", "kafka-viewer": "view", "kafka-injector": "inj"} {
		if err := os.WriteFile(filepath.Join(s.cfg.StackDir, "secrets", name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.cfg.Env["KAFKA_NODES"] = "kafka:1:29092:29093 kafka-2:2:29095:29097 kafka-3:3:29096:29098"
	nodes := s.kafkaNodes()
	if len(nodes) != 3 {
		t.Fatalf("kafkaNodes() = %v, want 3 nodes", nodes)
	}
	dir := filepath.Join(s.cfg.StackDir, "kafka-2")
	// formatted already: the test needs no Java
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "meta.properties"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "server.properties")
	if err := s.configureKafkaNode(context.Background(), nodes[1], dir, conf); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(conf)
	for _, want := range []string{"min.insync.replicas=2", "node.id=2", "log.dirs=" + filepath.Join(dir, "data"),
		"listeners=BROKER://127.0.0.1:29095,CONTROLLER://127.0.0.1:29097",
		"controller.quorum.voters=1@127.0.0.1:29093,2@127.0.0.1:29097,3@127.0.0.1:29098",
		`username="admin" password="adm" user_admin="adm";`, `user_viewer="view" user_injector="inj";`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("node 2's configuration lacks %q", want)
		}
	}
	if strings.Contains(string(raw), "controller.quorum.bootstrap.servers") {
		t.Error("node 2's configuration has the single node's standalone quorum")
	}
	if topo, _ := os.ReadFile(filepath.Join(s.cfg.StackDir, "topology")); string(topo) != "cluster\n" {
		t.Errorf(".stack/topology = %q, want cluster", topo)
	}
}
