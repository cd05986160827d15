package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"outboxsaga.dev/stack"
)

// The cluster topology (TOPOLOGY=cluster, scripts/topology.sh; docs/architecture.md, "The cluster
// topology"): three Kafka nodes (kafka, kafka-2, kafka-3: broker and controller each), two Connect
// workers of one group (connect, connect-2), two instances of every saga service (order,
// order-2, ...; instance i on its port + i*stack.InstancePortStep) and the reverse proxy on the
// services' usual ports (tools/cmd/proxy). The first member of each keeps the single-node
// component's name, so that every command naming kafka, connect or order names one of them.

// clusterMode reports whether the stack runs as the cluster.
func (s *Stack) clusterMode() bool { return s.cfg.get("TOPOLOGY") == "cluster" }

// kafkaNode is a Kafka node of the cluster, its ports moved by the stack's offset.
type kafkaNode = stack.KafkaNode

// kafkaNodes are the nodes of KAFKA_NODES (scripts/topology.sh; ConfigFromEnv refuses a value
// that does not parse).
func (s *Stack) kafkaNodes() []kafkaNode {
	nodes, _ := stack.ParseKafkaNodes(s.cfg.get("KAFKA_NODES"))
	return nodes
}

func (s *Stack) brokerAddr(n kafkaNode) string {
	return fmt.Sprintf("%s:%d", s.cfg.get("KAFKA_HOST"), n.Port)
}

// bootstrap lists every broker of the cluster.
func (s *Stack) bootstrap() string {
	var out []string
	for _, n := range s.kafkaNodes() {
		out = append(out, s.brokerAddr(n))
	}
	return strings.Join(out, ",")
}

// connectWorkers are the workers of CONNECT_WORKERS (scripts/topology.sh), by name: their REST
// ports.
func (s *Stack) connectWorkers() map[string]int {
	out := map[string]int{}
	workers, _ := stack.ParseConnectWorkers(s.cfg.get("CONNECT_WORKERS"))
	for _, w := range workers {
		out[w.Name()] = w.Port
	}
	return out
}

// withEnv returns a copy of the stack whose settings are s's with these replaced: a component
// built by it (a second worker, an instance) is the single-node one with its own ports and files.
func (s *Stack) withEnv(kv map[string]string) *Stack {
	cfg := s.cfg
	cfg.Env = maps.Clone(s.cfg.Env)
	maps.Copy(cfg.Env, kv)
	return &Stack{cfg: cfg, out: s.out}
}

// clusterComponents is the cluster's components in start order: PostgreSQL, the Kafka nodes, the
// Connect workers, the programs (two instances of each saga service), the proxy once the
// instances run, the monitoring.
func (s *Stack) clusterComponents() []*component {
	var out []*component
	proxied := false
	for _, n := range Components() {
		switch {
		case n == "postgres":
			out = append(out, s.postgres())
		case n == "kafka":
			for _, node := range s.kafkaNodes() {
				out = append(out, s.kafkaNode(node))
			}
		case n == "connect":
			workers := s.connectWorkers()
			for _, w := range stack.ConnectWorkers() {
				out = append(out, s.connectWorker(w.Name(), workers[w.Name()]))
			}
		case isProgram(n):
			p := stack.Service(n)
			if !p.Replicated() {
				if p.Kind == stack.Console && !proxied { // the console reads the services through it
					out, proxied = append(out, s.proxy()), true
				}
				out = append(out, s.program(n))
				continue
			}
			for i := 1; i <= stack.Instances; i++ {
				out = append(out, s.instance(p, i))
			}
		case isMonitoring(n):
			if !proxied {
				out, proxied = append(out, s.proxy()), true
			}
			out = append(out, s.monitor(n))
		}
	}
	return out
}

// ---- Kafka nodes ----

func (s *Stack) kafkaNode(n kafkaNode) *component {
	dir := filepath.Join(s.cfg.StackDir, n.Name())
	conf := filepath.Join(dir, "server.properties")
	addr := s.brokerAddr(n)
	controller := fmt.Sprintf("%s:%d", s.cfg.get("KAFKA_HOST"), n.ControllerPort)
	return &component{
		name: n.Name(), title: fmt.Sprintf("Kafka node %d", n.ID), where: "on " + addr,
		is:    func(_ int, args []string) bool { return argsHave(args, "kafka.Kafka", conf) },
		ports: []port{{n.Port, "KAFKA_NODES"}, {n.ControllerPort, "KAFKA_NODES"}},
		lock:  filepath.Join(dir, "data", ".lock"),
		// A broker's controlled shutdown moves its leaders away first: it needs the quorum, so
		// the last node of a stopping cluster may get SIGKILL after the grace.
		stopSig: syscall.SIGTERM, forceSig: syscall.SIGKILL, grace: 30 * time.Second,
		readyTimeout: 180 * time.Second,
		// Started: its controller listens (the broker answers only once a quorum has elected a
		// leader, which takes two nodes: after, below, waits for that).
		ready: func(ctx context.Context) error {
			c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", controller)
			if err == nil {
				c.Close()
			}
			return err
		},
		prepare: func(ctx context.Context) error { return s.configureKafkaNode(ctx, n, dir, conf) },
		spec: func() (spec, error) {
			return s.javaSpec(n.Name(), s.cfg.get("KAFKA_HEAP"), []string{"LANG=C.UTF-8"},
				"-Dlog4j2.configurationFile="+filepath.Join(s.cfg.Root, "infra/kafka/log4j2.properties"),
				"-cp", s.classpath(), "kafka.Kafka", conf)
		},
		after: func(ctx context.Context, started bool) error { return s.afterKafkaNode(ctx, n) },
	}
}

// afterKafkaNode: once every node runs, waits until each broker answers (registered, with the
// quorum's metadata), then applies the logins, ACLs and topics (setupKafka; only what
// changed, unless a node's storage was formatted just now). With a node down it does nothing:
// the topics' three replicas need the three brokers.
func (s *Stack) afterKafkaNode(ctx context.Context, started kafkaNode) error {
	nodes := s.kafkaNodes()
	for _, n := range nodes {
		if _, ok := s.running(s.kafkaNode(n)); !ok {
			return nil
		}
	}
	for _, n := range nodes {
		addr, want := s.brokerAddr(n), fmt.Sprintf("broker %d at", n.ID)
		answers := func() bool {
			out, err := exec.CommandContext(ctx, "kcat", "-F", s.cfg.get("KCAT_CONF"), "-b", addr, "-L", "-m", "5").Output()
			return err == nil && bytes.Contains(out, []byte(want))
		}
		if !s.await(fmt.Sprintf("broker %d (%s) to join the cluster", n.ID, addr), 300*time.Second, answers) {
			s.tail(s.logFile(n.Name()), 30)
			return fmt.Errorf("broker %d (%s) does not answer with itself in the cluster's metadata (log: %s)", n.ID, addr, s.logFile(n.Name()))
		}
	}
	// Only what changed, unless no setup ran yet on this stack.
	_, err := os.Stat(filepath.Join(s.cfg.StackDir, "kafka", "setup.sha256"))
	return s.setupKafka(ctx, err == nil)
}

// configureKafkaNode writes node n's configuration and formats its storage on first use
// (configureKafkaBroker), once the stack is claimed for the cluster topology.
func (s *Stack) configureKafkaNode(ctx context.Context, n kafkaNode, dir, conf string) error {
	if err := s.claimTopology(); err != nil {
		return err
	}
	return s.configureKafkaBroker(ctx, &n, dir, conf)
}

// claimTopology records that this stack is the cluster (.stack/topology, which scripts/topology.sh
// reads when TOPOLOGY is not set), and refuses a stack whose Kafka storage is the single node's.
func (s *Stack) claimTopology() error {
	f := filepath.Join(s.cfg.StackDir, "topology")
	raw, err := os.ReadFile(f)
	if err == nil && strings.TrimSpace(string(raw)) == "cluster" {
		return nil
	}
	if err == nil || fileExists(filepath.Join(s.cfg.StackDir, "kafka", "data", "meta.properties")) {
		return fmt.Errorf("the stack in %s was made single-node (its Kafka storage is one node's): stop it and start over as the cluster (this deletes its data): make down && make clean && TOPOLOGY=cluster make up", s.cfg.StackDir)
	}
	return writeSecret(f, "cluster\n")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// clusterID returns the cluster's id (.stack/kafka-cluster-id), made on first use.
func (s *Stack) clusterID(ctx context.Context) (string, error) {
	f := filepath.Join(s.cfg.StackDir, "kafka-cluster-id")
	if raw, err := os.ReadFile(f); err == nil && len(bytes.TrimSpace(raw)) > 0 {
		return string(bytes.TrimSpace(raw)), nil
	}
	id, err := s.kafkaTool(ctx, "kafka.tools.StorageTool", "random-uuid").Output()
	if err != nil {
		return "", fmt.Errorf("a cluster id for Kafka: %w", err)
	}
	v := strings.TrimSpace(string(id))
	return v, writeSecret(f, v+"\n")
}

func (s *Stack) kafkaTool(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "java", append([]string{"-Xmx256m",
		"-Dlog4j2.configurationFile=" + filepath.Join(s.cfg.Root, "infra/kafka/log4j2-tools.properties"), "-cp", s.classpath()}, args...)...)
}

// ---- Connect workers ----

// connectWorker is the single-node worker with its own REST port, configuration and log; its
// configuration gets the cluster's overrides and every broker.
func (s *Stack) connectWorker(name string, restPort int) *component {
	dir := filepath.Join(s.cfg.StackDir, name)
	conf := filepath.Join(dir, "connect-distributed.properties")
	w := s.withEnv(map[string]string{"CONNECT_CONF": conf, "CONNECT_PORT": strconv.Itoa(restPort)})
	c := w.connect()
	c.name, c.title = name, "Kafka Connect worker "+name
	// Two workers and three brokers starting on a busy 2-core box: a worker took over 120 s to
	// list its plugins at a load average of 60.
	c.readyTimeout = 300 * time.Second
	c.prepare = func(context.Context) error {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := w.configureConnect(); err != nil {
			return err
		}
		extra, err := os.ReadFile(filepath.Join(s.cfg.Root, "infra/connect/cluster.properties"))
		if err != nil {
			return err
		}
		base, err := os.ReadFile(conf)
		if err != nil {
			return err
		}
		text := string(base) + "\n" + string(extra) + "bootstrap.servers=" + s.bootstrap() + "\n"
		if eos := s.cfg.get("EXACTLY_ONCE_SOURCE"); eos != "" {
			text += "exactly.once.source.support=" + eos + "\n"
		}
		if err := writeSecret(conf, text); err != nil {
			return err
		}
		if err := s.openTo(0o710, dir); err != nil {
			return err
		}
		return s.openTo(0o640, conf)
	}
	c.spec = logAs(c.spec, s.logFile(name))
	return c
}

// logAs returns spec with its log replaced.
func logAs(f func() (spec, error), log string) func() (spec, error) {
	return func() (spec, error) {
		sp, err := f()
		sp.log = log
		return sp, err
	}
}

// ---- service instances and the proxy ----

// instance is instance i of saga service p: the program on its own address.
func (s *Stack) instance(p stack.Program, i int) *component {
	c := s.withEnv(map[string]string{p.AddrVar: s.instanceAddr(p, i)}).program(p.Name)
	c.name, c.title = p.InstanceName(i), fmt.Sprintf("%s (instance %d)", p.Name, i)
	c.spec = logAs(c.spec, s.logFile(c.name))
	return c
}

// instanceAddr is the address of instance i (1-based) of p: its usual port (offset applied) +
// i*stack.InstancePortStep.
func (s *Stack) instanceAddr(p stack.Program, i int) string {
	_, portStr, _ := strings.Cut(s.addr(p.Name), ":")
	usual, _ := strconv.Atoi(portStr)
	return fmt.Sprintf("127.0.0.1:%d", usual+i*stack.InstancePortStep)
}

// instanceAddrs are the addresses of every instance of p.
func (s *Stack) instanceAddrs(p stack.Program) []string {
	var out []string
	for i := 1; i <= stack.Instances; i++ {
		out = append(out, s.instanceAddr(p, i))
	}
	return out
}

// scrapeTargets are the addresses Prometheus scrapes for program p: every instance on the cluster
// (each its own series, so one instance down is seen), its one address otherwise.
func (s *Stack) scrapeTargets(p stack.Program) []string {
	if s.clusterMode() && p.Replicated() {
		return s.instanceAddrs(p)
	}
	return []string{s.cfg.get(p.AddrVar)}
}

// proxy is the reverse proxy (tools/cmd/proxy) on every saga service's usual address, forwarding
// to its instances.
func (s *Stack) proxy() *component {
	bin := filepath.Join(s.cfg.Root, "bin", stack.ProxyName)
	args := []string{"-stack", s.cfg.StackDir}
	var ports []port
	var listens []string
	for _, p := range stack.SagaServices() {
		listen := s.addr(p.Name)
		_, portStr, _ := strings.Cut(listen, ":")
		usual, _ := strconv.Atoi(portStr)
		args = append(args, "-route", listen+"="+strings.Join(s.instanceAddrs(p), ","))
		ports = append(ports, port{usual, p.AddrVar})
		listens = append(listens, listen)
	}
	return &component{
		name: stack.ProxyName, title: "the reverse proxy", where: "on the services' usual ports",
		is: func(_ int, a []string) bool {
			return len(a) > 0 && a[0] == bin && argsHave(a, "-stack", s.cfg.StackDir)
		},
		ports:   ports,
		stopSig: syscall.SIGTERM, forceSig: syscall.SIGKILL, grace: 15 * time.Second,
		readyTimeout: 30 * time.Second,
		ready: func(ctx context.Context) error {
			for _, l := range listens {
				c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", l)
				if err != nil {
					return err
				}
				c.Close()
			}
			return nil
		},
		// built here (it is no program of the table, which services.sh builds)
		prepare: func(ctx context.Context) error {
			cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/proxy")
			cmd.Dir = filepath.Join(s.cfg.Root, "tools")
			cmd.Stdout, cmd.Stderr = s.cfg.Out, s.cfg.Err
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("build of tools/cmd/proxy failed: %w", err)
			}
			return s.openTo(0o750, bin)
		},
		spec: func() (spec, error) {
			return spec{path: bin, args: args, env: []string{"LANG=C.UTF-8"}, user: s.cfg.get("RUN_USER"), log: s.logFile(stack.ProxyName)}, nil
		},
	}
}
