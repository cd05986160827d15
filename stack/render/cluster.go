package render

import "outboxsaga.dev/stack"

// clusterData is what cluster.env.tmpl sees: the cluster topology's members (stack/cluster.go).
type clusterData struct {
	Generated   string
	Nodes       []stack.KafkaNode
	Workers     []stack.ConnectWorker
	Saga        []stack.Program
	Instances   int
	Step        int
	Proxy       string
	Replication int
	MinInsync   int
}

func cluster() clusterData {
	return clusterData{
		Generated: Generated, Nodes: stack.KafkaNodes(), Workers: stack.ConnectWorkers(),
		Saga: stack.SagaServices(), Instances: stack.Instances, Step: stack.InstancePortStep,
		Proxy: stack.ProxyName, Replication: stack.ClusterReplicationFactor, MinInsync: stack.ClusterMinInsyncReplicas,
	}
}
