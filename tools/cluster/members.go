package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"outboxsaga.dev/messaging/debezium"
	"outboxsaga.dev/stack"
)

// Enabled reports whether the stack the environment describes is the cluster (TOPOLOGY=cluster,
// which scripts/topology.sh sets from .stack/topology when it is not given).
func Enabled() bool { return os.Getenv("TOPOLOGY") == "cluster" }

// Node is one Kafka node of the cluster (broker and controller in one process).
type Node struct {
	Name string // its component: kafka, kafka-2, kafka-3
	ID   int    // its node.id
	Port int    // its broker listener, offset applied
}

// Worker is one Kafka Connect worker of the cluster's group.
type Worker struct {
	Name string // its component: connect, connect-2
	Port int    // its REST port, offset applied
}

// ID is the worker's id in Connect's statuses (its advertised REST host:port).
func (w Worker) ID() string { return "127.0.0.1:" + strconv.Itoa(w.Port) }

// URL is its REST API.
func (w Worker) URL() string { return "http://" + w.ID() }

// Nodes returns the Kafka nodes of KAFKA_NODES (stack.ParseKafkaNodes).
func Nodes() ([]Node, error) {
	nodes, err := stack.ParseKafkaNodes(os.Getenv("KAFKA_NODES"))
	if err == nil && len(nodes) == 0 {
		err = fmt.Errorf("KAFKA_NODES is empty: run with scripts/lib.sh's settings on a cluster (TOPOLOGY=cluster)")
	}
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		out[i] = Node{Name: n.Name(), ID: n.ID, Port: n.Port}
	}
	return out, err
}

// Workers returns the Connect workers of CONNECT_WORKERS (stack.ParseConnectWorkers).
func Workers() ([]Worker, error) {
	workers, err := stack.ParseConnectWorkers(os.Getenv("CONNECT_WORKERS"))
	if err == nil && len(workers) == 0 {
		err = fmt.Errorf("CONNECT_WORKERS is empty: run with scripts/lib.sh's settings on a cluster (TOPOLOGY=cluster)")
	}
	out := make([]Worker, len(workers))
	for i, w := range workers {
		out[i] = Worker{Name: w.Name(), Port: w.Port}
	}
	return out, err
}

// quorumState is the part of a node's __cluster_metadata-0/quorum-state file (the KRaft
// election state it persisted) that names the leader.
type quorumState struct {
	LeaderID    int `json:"leaderId"`
	LeaderEpoch int `json:"leaderEpoch"`
}

// ActiveController returns the node that is the active controller: the leader of the newest
// epoch any node has persisted in its quorum-state file (.stack/<node>/data/__cluster_metadata-0;
// a node that is down keeps an older epoch, and the newest wins).
func ActiveController(stackDir string, nodes []Node) (Node, error) {
	best := quorumState{LeaderID: -1, LeaderEpoch: -1}
	for _, n := range nodes {
		raw, err := os.ReadFile(filepath.Join(stackDir, n.Name, "data", "__cluster_metadata-0", "quorum-state"))
		if err != nil {
			continue
		}
		var q quorumState
		if json.Unmarshal(raw, &q) == nil && q.LeaderID >= 0 && q.LeaderEpoch > best.LeaderEpoch {
			best = q
		}
	}
	for _, n := range nodes {
		if n.ID == best.LeaderID {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("no node's quorum-state under %s names a leader", stackDir)
}

// Busiest returns the worker that runs the most tasks, and how many, as the first worker that
// answers reports them.
func Busiest(ctx context.Context, user, password string, workers []Worker) (Worker, int, error) {
	var last error
	for _, w := range workers {
		st, err := debezium.NewClient(w.URL(), user, password).Statuses(ctx)
		if err != nil {
			last = err
			continue
		}
		tasks := map[string]int{}
		for _, s := range st {
			for _, t := range s.Tasks {
				tasks[t.WorkerID]++
			}
		}
		best, most := workers[0], -1
		for _, w := range workers {
			if tasks[w.ID()] > most {
				best, most = w, tasks[w.ID()]
			}
		}
		return best, most, nil
	}
	return Worker{}, 0, fmt.Errorf("no Connect worker answered: %w", last)
}

// AllRunningOn reports whether every connector and task of st is RUNNING on worker w.
func AllRunningOn(st map[string]debezium.Status, w Worker) bool {
	if len(st) == 0 {
		return false
	}
	for _, s := range st {
		if !s.Running() || s.Connector.WorkerID != w.ID() {
			return false
		}
		for _, t := range s.Tasks {
			if t.WorkerID != w.ID() {
				return false
			}
		}
	}
	return true
}
