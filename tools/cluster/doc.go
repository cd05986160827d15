// Package cluster holds the cluster topology's check (TOPOLOGY=cluster make up; docs/cluster.md):
// with orders flowing, a broker SIGKILLed, then the Kafka Connect worker holding the most tasks,
// and the invariants checked after. The check is its test, run against a running cluster:
//
//	. scripts/lib.sh && ensure_secrets && supervisor_env && kafka_as viewer && cd tools/cluster && go test -count=1 -v -timeout 20m .
//
// It skips on a single-node stack (TOPOLOGY unset or single).
package cluster
