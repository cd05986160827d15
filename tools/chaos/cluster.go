package chaos

import (
	"context"
	"fmt"
	"slices"

	"outboxsaga.dev/stack"
	"outboxsaga.dev/tools/cluster"
)

// The cluster topology's kills (TOPOLOGY=cluster make chaos; docs/cluster.md). A cycle kills one
// kind of member, resolved to the processes of that moment: the kinds come in rounds of every
// kind in a random order, like the single node's components.
const (
	// KillBroker is a Kafka node that is not the active controller.
	KillBroker = "broker"
	// KillController is the node that is the active KRaft controller (a broker too).
	KillController = "controller"
	// KillWorker is the Connect worker that runs the most tasks.
	KillWorker = "worker"
	// KillInstance is one instance of one saga service.
	KillInstance = "instance"
	// KillBrokerAndWorker is a broker (not the controller) and the busiest worker at once.
	KillBrokerAndWorker = "broker+worker"
)

// ClusterKinds are what the cluster's chaos cycles kill.
var ClusterKinds = []string{"postgres", KillBroker, KillController, KillWorker, KillInstance, KillBrokerAndWorker, "webhooksink"}

// clusterMembers are the cluster's Kafka nodes and Connect workers (from the environment
// scripts/topology.sh exports).
type clusterMembers struct {
	nodes   []cluster.Node
	workers []cluster.Worker
}

func loadClusterMembers() (*clusterMembers, error) {
	nodes, err := cluster.Nodes()
	if err != nil {
		return nil, err
	}
	workers, err := cluster.Workers()
	if err != nil {
		return nil, err
	}
	return &clusterMembers{nodes: nodes, workers: workers}, nil
}

// victims resolves a kind of kill to the components it takes down now, with a note saying which.
func (r *Runner) victims(ctx context.Context, kind string) ([]string, string, error) {
	m := r.members
	switch kind {
	case KillController:
		c, err := cluster.ActiveController(r.cfg.Stack.StackDir, m.nodes)
		if err != nil {
			return nil, "", err
		}
		return []string{c.Name}, c.Name + ", the active controller", nil
	case KillBroker:
		b, err := r.plainBroker()
		if err != nil {
			return nil, "", err
		}
		return []string{b}, b + ", not the controller", nil
	case KillWorker:
		w, n, err := r.busiestWorker(ctx)
		if err != nil {
			return nil, "", err
		}
		return []string{w}, fmt.Sprintf("%s, running %d of the tasks", w, n), nil
	case KillBrokerAndWorker:
		b, err := r.plainBroker()
		if err != nil {
			return nil, "", err
		}
		w, n, err := r.busiestWorker(ctx)
		if err != nil {
			return nil, "", err
		}
		return []string{b, w}, fmt.Sprintf("%s (not the controller) and %s (%d tasks) at once", b, w, n), nil
	case KillInstance:
		i := r.randomInstance()
		return []string{i}, i + ", one of its service's two instances", nil
	}
	return []string{kind}, kind, nil
}

// plainBroker returns a random Kafka node that is not the active controller.
func (r *Runner) plainBroker() (string, error) {
	c, err := cluster.ActiveController(r.cfg.Stack.StackDir, r.members.nodes)
	if err != nil {
		return "", err
	}
	var others []string
	for _, n := range r.members.nodes {
		if n != c {
			others = append(others, n.Name)
		}
	}
	return others[r.rng.IntN(len(others))], nil
}

func (r *Runner) busiestWorker(ctx context.Context) (string, int, error) {
	e := r.cfg.Endpoints
	w, n, err := cluster.Busiest(ctx, e.ConnectRESTUser, e.ConnectRESTPassword, r.members.workers)
	return w.Name, n, err
}

// randomInstance returns one instance of a random saga service (order-2, payment, ...).
func (r *Runner) randomInstance() string {
	svcs := stack.SagaServices()
	p := svcs[r.rng.IntN(len(svcs))]
	return p.InstanceName(1 + r.rng.IntN(stack.Instances))
}

// targetsOfRound returns what one round of cycles kills: every component of the single node, or
// every kind of the cluster.
func (r *Runner) targetsOfRound() []string {
	if r.members != nil {
		return slices.Clone(ClusterKinds)
	}
	return slices.Clone(Components)
}
