package stack

import "fmt"

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
