package stack

import (
	"fmt"
	"strconv"
	"strings"
)

// The cluster topology (TOPOLOGY=cluster make up; docs/architecture.md, "The cluster topology"):
// three KRaft nodes, two Kafka Connect workers, two instances of every saga service behind a
// reverse proxy that holds the usual ports. Every port is at offset 0, as the table's.

// KafkaNode is one node of the cluster's Kafka: broker and controller in one process.
type KafkaNode struct {
	// ID is its node.id (1, 2, 3).
	ID int
	// Port is its broker (client) listener.
	Port int
	// ControllerPort is its KRaft controller listener.
	ControllerPort int
}

// Name returns its component's name: kafka for node 1 (the single-node stack's broker, so that
// every command naming kafka still names a broker), kafka-<id> for the others.
func (n KafkaNode) Name() string { return memberName("kafka", n.ID) }

// KafkaNodes returns the cluster's Kafka nodes. Node 1 keeps the single-node stack's ports;
// 9094 is Alertmanager's, so the others take 9095 to 9098.
func KafkaNodes() []KafkaNode {
	return []KafkaNode{
		{ID: 1, Port: KafkaPort, ControllerPort: KafkaControllerPort},
		{ID: 2, Port: 9095, ControllerPort: 9097},
		{ID: 3, Port: 9096, ControllerPort: 9098},
	}
}

// ConnectWorker is one Kafka Connect worker of the cluster's group.
type ConnectWorker struct {
	// ID is its number (1, 2).
	ID int
	// Port is its REST API's.
	Port int
}

// Name returns its component's name: connect for worker 1, connect-<id> for the others.
func (w ConnectWorker) Name() string { return memberName("connect", w.ID) }

// ConnectWorkers returns the cluster's Connect workers: one group, the same REST login.
func ConnectWorkers() []ConnectWorker {
	return []ConnectWorker{{ID: 1, Port: ConnectPort}, {ID: 2, Port: 8087}}
}

// Instances is how many instances of each saga service the cluster runs.
const Instances = 2

// InstancePortStep separates a service's port from its instances' ports: instance i (1-based)
// listens on Port + i*InstancePortStep (order: 8280 and 8380), the proxy on Port. Not 100: the
// chaos run starts its extra instances there.
const InstancePortStep = 200

// ProxyName is the cluster's reverse proxy's component and command (tools/cmd/proxy): it listens
// on every saga service's usual port and forwards to its instances.
const ProxyName = "proxy"

// Replicated reports whether the cluster runs Instances instances of p: the saga services. The
// simulators stand for the outside world (one card gateway, one webhook receiver, each with the
// state of its own), and the console is an operator's tool.
func (p Program) Replicated() bool { return p.Kind == Saga }

// InstancePort returns the port of instance i (1-based) of p at offset 0.
func (p Program) InstancePort(i int) int { return p.Port + i*InstancePortStep }

// InstanceName returns the component name of instance i (1-based) of p: its name for the first
// (so that every command naming the service still names an instance), <name>-<i> for the others.
func (p Program) InstanceName(i int) string { return memberName(p.Name, i) }

// ClusterReplicationFactor is every topic's replication factor in the cluster, and
// ClusterMinInsyncReplicas its min.insync.replicas: one node may be lost without stopping a
// producer (acks=all), two stop them and lose nothing.
const (
	ClusterReplicationFactor = 3
	ClusterMinInsyncReplicas = 2
)

func memberName(name string, id int) string {
	if id == 1 {
		return name
	}
	return fmt.Sprintf("%s-%d", name, id)
}

// memberID is the id of the member called name (memberName's inverse): 1 for stem, N for stem-N.
func memberID(stem, name string) (int, bool) {
	if name == stem {
		return 1, true
	}
	n, ok := strings.CutPrefix(name, stem+"-")
	if !ok {
		return 0, false
	}
	id, err := strconv.Atoi(n)
	return id, err == nil && id > 1
}

// ParseKafkaNodes reads the Kafka nodes as scripts/topology.sh exports them in KAFKA_NODES
// ("<component>:<node id>:<broker port>:<controller port> ...", the ports moved by the stack's
// offset).
func ParseKafkaNodes(v string) ([]KafkaNode, error) {
	var out []KafkaNode
	for _, f := range strings.Fields(v) {
		parts := strings.Split(f, ":")
		if len(parts) != 4 {
			return nil, fmt.Errorf("KAFKA_NODES: %q is not name:id:port:controller-port", f)
		}
		var n KafkaNode
		var err1, err2, err3 error
		n.ID, err1 = strconv.Atoi(parts[1])
		n.Port, err2 = strconv.Atoi(parts[2])
		n.ControllerPort, err3 = strconv.Atoi(parts[3])
		if err1 != nil || err2 != nil || err3 != nil || n.Name() != parts[0] {
			return nil, fmt.Errorf("KAFKA_NODES: %q is not name:id:port:controller-port", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseConnectWorkers reads the Connect workers as scripts/topology.sh exports them in
// CONNECT_WORKERS ("<component>:<REST port> ...", the ports moved by the stack's offset).
func ParseConnectWorkers(v string) ([]ConnectWorker, error) {
	var out []ConnectWorker
	for _, f := range strings.Fields(v) {
		name, p, _ := strings.Cut(f, ":")
		id, ok := memberID("connect", name)
		port, err := strconv.Atoi(p)
		if !ok || err != nil {
			return nil, fmt.Errorf("CONNECT_WORKERS: %q is not name:port", f)
		}
		out = append(out, ConnectWorker{ID: id, Port: port})
	}
	return out, nil
}
