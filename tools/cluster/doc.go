// Package cluster knows the cluster topology's members (TOPOLOGY=cluster make up; docs/cluster.md)
// as scripts/topology.sh exports them, and finds, at a given moment, the Kafka node that is the
// active KRaft controller and the Kafka Connect worker that runs the most tasks: what the
// cluster's check and `TOPOLOGY=cluster make chaos` kill.
//
// Its test is the cluster's check, run against a running cluster: with orders flowing, a broker
// SIGKILLed, then the worker holding the most tasks, then two brokers at once (production stops,
// nothing is lost), and the invariants checked after:
//
//	. scripts/lib.sh && ensure_secrets && supervisor_env && kafka_as viewer && cd tools/cluster && go test -count=1 -v -timeout 20m .
//
// It skips on a single-node stack (TOPOLOGY unset or single).
package cluster
