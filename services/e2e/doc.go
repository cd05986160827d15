// Package e2e drives the running pipeline (make up) from the outside, the way a user
// does: HTTP calls to the services, the gateway simulator's ledger, and the Kafka
// topics. It holds only tests; see saga_test.go.
package e2e
