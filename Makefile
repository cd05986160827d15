# The pipeline's commands. `make up` brings everything up, `make test` runs every test.
# Both install what is missing (Debian packages, Maven Central jars) and clean up after
# themselves; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
TOPIC ?= order-events

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: up
up: ## bring the whole pipeline up (Postgres, Kafka, Connect + Debezium, services, connectors)
	@scripts/up.sh

.PHONY: down
down: ## stop everything `make up` started (data stays in .stack/)
	@scripts/down.sh

.PHONY: test
test: ## run every test against the real stack (starts it if needed, stops what it started)
	@scripts/test.sh

.PHONY: bench
bench: ## benchmark the running stack (ceiling, rate steps, sustained run, hops, RSS) into docs/bench/
	@scripts/bench.sh

.PHONY: chaos
chaos: ## kill components under load, replay, poison, fuzz; check the invariants (CYCLES=100 make chaos)
	@scripts/chaos.sh

.PHONY: rebuild
rebuild: ## rebuild the projections from the event store, compare, print the differences (SWAP=1 puts the rebuilt rows in place)
	@SWAP=$(SWAP) scripts/rebuild.sh

.PHONY: install
install: ## install missing prerequisites (Debian packages, jars from Maven Central)
	@scripts/install.sh

.PHONY: connectors
connectors: ## register (or update) the Debezium connectors and wait until RUNNING
	@. scripts/lib.sh && supervise connectors

.PHONY: status
status: ## processes, connector/task states, replication slot lag, consumer group lag
	@scripts/status.sh

.PHONY: tail
tail: ## follow a topic with kcat: make tail TOPIC=order-events
	@scripts/tail.sh $(TOPIC)

.PHONY: traces
traces: ## the trace viewer: Zipkin on 127.0.0.1:9411, the programs exporting their spans to it (Ctrl-C stops it)
	@scripts/traces.sh

.PHONY: token
token: ## print a customer token (the token alone, one line): make -s token CUSTOMER=U1 [TTL=24h]
	@test -n "$(CUSTOMER)" || { echo 'usage: make -s token CUSTOMER=<id> [TTL=24h]' >&2; exit 2; }
	@. scripts/lib.sh && cd tools && go run ./cmd/token -customer "$(CUSTOMER)" -ttl "$(or $(TTL),24h)"

.PHONY: compose-env
compose-env: ## write the secrets of the docker compose stack into .env (mode 0600; docker-compose.yml needs them)
	@scripts/compose-env.sh

.PHONY: build
build: ## build the Go programs and the supervisor (tools/cmd/stack, bin/stack) into bin/
	@scripts/services.sh build && cd tools && go build -o ../bin/stack ./cmd/stack

.PHONY: vet
vet: ## gofmt and go vet every module
	@scripts/test.sh --vet-only

.PHONY: clean
clean: ## stop everything and delete the stack's data, logs and jars (.stack/, its PostgreSQL cluster) and bin/
	@scripts/clean.sh
