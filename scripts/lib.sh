#!/usr/bin/env bash
# Shared settings and helpers for the native stack scripts. Sourced, never run.
# Every setting can be overridden from the environment. Sourcing it only defines things:
# it creates no file and no directory (each script makes what it writes, where it writes it).

# Everything the stack writes (data, logs, secrets, configuration with passwords in it) is its
# user's alone: files 0600, directories 0700.
umask 077

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The stack's directory, absolute and canonical: process identities, pid files and the
# PostgreSQL directory below are keyed by this path.
STACK=$(realpath -m "${STACK_DIR:-$ROOT/.stack}")
LIB=$STACK/lib
LOGS=$STACK/logs
PIDS=$STACK/pids

# STACK_PORT_OFFSET moves every port of the stack at once, so that a second stack can
# run beside the first (give it its own STACK_DIR too), e.g. for a benchmark while
# another stack takes chaos:  STACK_DIR=$PWD/.stack-b STACK_PORT_OFFSET=10000 make up
OFFSET=${STACK_PORT_OFFSET:-0}

# The programs, topics and base ports of the stack: scripts/stack.env, rendered from the table in
# stack/stack.go (a new program is a row there and `go generate ./...` in stack/; see
# docs/service-layout.md, "Adding a service"). Every port below is its base plus OFFSET.
. "$ROOT/scripts/stack.env"

# Every component of the stack, in start order; they stop in the reverse order.
# The Go programs are started by scripts/services.sh (the gateway simulator before payment, the
# webhook sink before notification).
SERVICES=$STACK_PROGRAMS
# Prometheus and Alertmanager (scripts/prometheus.sh; after the services they watch).
MONITORING="alertmanager prometheus"
COMPONENTS="postgres kafka connect $SERVICES $MONITORING"
# The services that own a database, an outbox and a connector, and consume Kafka.
SAGA_SERVICES=$STACK_SAGA_SERVICES
# reversed WORD...: the words in reverse order (the stop order).
reversed() { local w out=(); for w in "$@"; do out=("$w" "${out[@]}"); done; echo "${out[*]}"; }

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-$((PG_BASE_PORT + OFFSET))}
PG_SUPERUSER=${PG_SUPERUSER:-postgres}
# PG_SUPERPASS: the superuser's password, random per stack (.stack/secrets/pg-superuser, see
# "credentials" below).
# initdb and pg_ctl refuse to run as root; as root we run them as this OS user.
PG_OS_USER=${PG_OS_USER:-postgres}

# Where the PostgreSQL cluster lives (PG_DIR: data/, run/ for the socket, the server log).
# The server runs as the OS user PG_OS_USER when we are root, and that user must be able to
# enter every directory above its data directory: a checkout in root's home (mode 0700) is out
# of its reach. So as root the cluster lives in PG_DIR_BASE/<hash of this stack's path>
# (.stack/pg is a symlink to it, `make clean` removes it); otherwise, and for a cluster an
# earlier version of these scripts made in .stack/pg, it lives in .stack/pg.
PG_DIR_BASE=${PG_DIR_BASE:-/var/lib/outbox-saga}
if [ "$(id -u)" != 0 ] || { [ -d "$STACK/pg/data" ] && [ ! -L "$STACK/pg" ]; }; then
  PG_DIR=$STACK/pg
  PG_LOG=$LOGS/postgres.log
else
  PG_DIR=$PG_DIR_BASE/pg-$(printf '%s' "$STACK" | sha256sum | cut -c1-16)
  PG_LOG=$PG_DIR/postgres.log # .stack/logs/postgres.log is a symlink to it
fi
PG_DATA=$PG_DIR/data
PG_SOCK=$PG_DIR/run

KAFKA_HOST=${KAFKA_HOST:-127.0.0.1}
KAFKA_PORT=${KAFKA_PORT:-$((KAFKA_BASE_PORT + OFFSET))}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_CONTROLLER_BASE_PORT + OFFSET))}
KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT
KAFKA_HEAP=${KAFKA_HEAP:--Xms256m -Xmx512m}
KAFKA_CONF=$STACK/kafka/server.properties
TOPIC_PARTITIONS=${TOPIC_PARTITIONS:-3}

CONNECT_PORT=${CONNECT_PORT:-$((CONNECT_BASE_PORT + OFFSET))}
CONNECT_URL=http://127.0.0.1:$CONNECT_PORT
# The REST API's one user (HTTP Basic; infra/connect/connect-distributed.properties): its password
# is .stack/secrets/connect-rest-<user>, exported as CONNECT_REST_PASSWORD (export_credentials).
CONNECT_REST_USER=${CONNECT_REST_USER:-operator}
CONNECT_HEAP=${CONNECT_HEAP:--Xms256m -Xmx768m}
CONNECT_CONF=$STACK/connect/connect-distributed.properties
# TOPOLOGY (single, or cluster: three Kafka nodes, two Connect workers, two instances of each
# service) and, for the cluster, every broker in KAFKA_BOOTSTRAP: scripts/topology.sh.
. "$ROOT/scripts/topology.sh"

# <PROGRAM>_PORT of every Go program (ORDER_PORT, GATEWAYSIM_PORT, ...).
for svc in $SERVICES; do
  base_var=$(tr 'a-z-' 'A-Z_' <<<"$svc")_BASE_PORT
  printf -v "$(tr 'a-z-' 'A-Z_' <<<"$svc")_PORT" '%s' $((${!base_var} + OFFSET))
done
GATEWAY_PORT=$GATEWAYSIM_PORT
# ---- monitoring (scripts/prometheus.sh; config in infra/prometheus) ----
PROMETHEUS_PORT=${PROMETHEUS_PORT:-$((PROMETHEUS_BASE_PORT + OFFSET))}
# Not 9093 (Alertmanager's own default): Kafka's controller holds it.
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-$((ALERTMANAGER_BASE_PORT + OFFSET))}
PROMETHEUS_CONF=$STACK/prometheus/prometheus.yml
ALERTMANAGER_CONF=$STACK/alertmanager/alertmanager.yml
# ---- end of monitoring ----

# setdefault NAME VALUE: exports NAME=VALUE unless the caller already set NAME.
setdefault() { [ -n "${!1:-}" ] || printf -v "$1" '%s' "$2"; export "${1?}"; }
# upper WORD: WORD in capitals, - as _ (the prefix of a program's or a principal's variables).
upper() { tr 'a-z-' 'A-Z_' <<<"$1"; }

# What the Go programs and the tests read. Each program's own defaults are the
# offset-0 values; a variable the caller set wins.
for svc in $SAGA_SERVICES; do
  P=$(upper "$svc"); port_var=${P}_PORT
  setdefault "${P}_HTTP_ADDR" "127.0.0.1:${!port_var}"
  setdefault "${P}_URL" "http://127.0.0.1:${!port_var}"
  setdefault "${P}_KAFKA_BROKERS" "$KAFKA_BOOTSTRAP"
done
setdefault GATEWAYSIM_ADDR "127.0.0.1:$GATEWAY_PORT"
setdefault WEBHOOKSINK_ADDR "127.0.0.1:$WEBHOOKSINK_PORT"
setdefault WEBHOOKSINK_URL "http://127.0.0.1:$WEBHOOKSINK_PORT"
setdefault NOTIFICATION_WEBHOOK_URL "$WEBHOOKSINK_URL/hooks"
setdefault PAYMENT_GATEWAY_URL "http://127.0.0.1:$GATEWAY_PORT"
setdefault GATEWAY_URL "$PAYMENT_GATEWAY_URL"
setdefault KAFKA_BROKERS "$KAFKA_BOOTSTRAP"
# The console (services/console) reads the services, Connect and Kafka (as viewer).
setdefault CONSOLE_ADDR "127.0.0.1:$CONSOLE_PORT"
setdefault CONSOLE_URL "http://127.0.0.1:$CONSOLE_PORT"
for svc in $SAGA_SERVICES; do url_var=$(upper "$svc")_URL; setdefault "CONSOLE_$(upper "$svc")_URL" "${!url_var}"; done
setdefault CONSOLE_CONNECT_URL "$CONNECT_URL"
setdefault CONSOLE_KAFKA_BROKERS "$KAFKA_BOOTSTRAP"
setdefault PROMETHEUS_URL "http://127.0.0.1:$PROMETHEUS_PORT"
setdefault ALERTMANAGER_URL "http://127.0.0.1:$ALERTMANAGER_PORT"
export CONNECT_URL CONNECT_REST_USER PG_HOST PG_PORT STACK_DIR=$STACK

# Topics the saga uses, and quarantine-events (where a connector puts a row that names another
# service's topic); created explicitly so consumers never wait for a first event.
SAGA_TOPICS=$STACK_SAGA_TOPICS
# Debezium's heartbeat topics, one per connector (__debezium-heartbeat.<topic.prefix>): made before
# the connectors run, so that a connector's principal only writes its own and nobody creates one.
HEARTBEAT_TOPICS=$STACK_HEARTBEAT_TOPICS

# ---- credentials ----------------------------------------------------------------------------
# Every password and the operator token are random, made once per stack by the first make up
# (ensure_secrets), kept in .stack (0700) in files of mode 0600, never committed, and handed to
# each program through its environment (docs/architecture.md, "Credentials").
#   .stack/admin-token              the operator token (ADMIN_TOKEN of the services)
#   .stack/connect-credentials      curl -u "$(cat .stack/connect-credentials)": Kafka Connect's REST
#                                   API as its one user, operator:<password> (HTTP Basic)
#   .stack/kcat.conf                kcat -F .stack/kcat.conf: the broker, as the read-only viewer
#                                   (SASL/PLAIN: see infra/kafka/server.properties)
#   .stack/secrets/pg-<role>        PostgreSQL: the superuser (pg-superuser) and, per service
#                                   database, <svc>_owner, <svc>_svc and debezium_<svc>
#   .stack/secrets/kafka-<name>     Kafka: admin (the broker's super user) and every principal of
#                                   infra/kafka/acls.conf
#   .stack/secrets/*.properties     the Kafka command-line tools' logins (admin, viewer)
#   .stack/secrets/connect-rest-<user>  the REST API's password (scripts/connect.sh writes the
#                                   worker's copy, .stack/connect/rest-users.properties, from it)
SECRETS=$STACK/secrets
KCAT_CONF=$STACK/kcat.conf
CONNECT_CREDENTIALS=$STACK/connect-credentials

# The service databases, <svc>_db each, with three roles each (infra/postgres/init.sql): <svc>_owner
# owns the tables and runs the migrations, <svc>_svc is the service at run time (rows, never the
# schema), debezium_<svc> streams the outbox (REPLICATION, CONNECT to this database only).
PG_SERVICES=$SAGA_SERVICES

# pg_roles: every login role of the cluster but the superuser.
pg_roles() { local s; for s in $PG_SERVICES; do echo "${s}_owner ${s}_svc debezium_${s}"; done; echo console; }
# kafka_principals: the broker's logins: admin and every principal of the ACL file.
kafka_principals() {
  echo admin
  awk '!/^[[:space:]]*(#|$)/ { print $1 }' "$ROOT/infra/kafka/acls.conf" "$ROOT/infra/kafka/acls-test.conf" | sort -u
}
# The test-only principal injector has a login and ACLs (infra/kafka/acls-test.conf) only while
# make test or make chaos runs (scripts/injector.sh on|off; the marker file says so, so that a
# broker restarted during a test run gets them back).
INJECTOR_MARK=$STACK/injector-on
injector_on() { [ -e "$INJECTOR_MARK" ]; }
# acl_files: the ACL files the broker has now, comma-separated (kafkasetup -acls).
acl_files() {
  local f=$ROOT/infra/kafka/acls.conf
  if injector_on; then f+=",$ROOT/infra/kafka/acls-test.conf"; fi
  echo "$f"
}

# read_secret NAME: the secret NAME of this stack (empty when there is none yet).
read_secret() { local v=; [ -r "$SECRETS/$1" ] && read -r v <"$SECRETS/$1"; printf '%s' "$v"; }

# export_credentials: exports what the programs read, from the secrets that exist: PG_SUPERPASS
# and PG_ADMIN_URL; <ROLE>_PG_PASSWORD of every role (DEBEZIUM_ORDER_PG_PASSWORD is read by
# Kafka Connect's env config provider); per service <SVC>_DATABASE_URL (the runtime role),
# <SVC>_MIGRATIONS_DATABASE_URL (the owner), <SVC>_KAFKA_USERNAME; <PRINCIPAL>_KAFKA_PASSWORD of
# every Kafka principal; ADMIN_TOKEN; CONNECT_REST_PASSWORD (Kafka Connect's REST API, as
# CONNECT_REST_USER). A variable the caller set wins.
export_credentials() {
  local r p svc pw
  [ -d "$SECRETS" ] || return 0
  setdefault PG_SUPERPASS "$(read_secret pg-superuser)"
  setdefault PG_ADMIN_URL "postgres://$PG_SUPERUSER:$PG_SUPERPASS@$PG_HOST:$PG_PORT/postgres?sslmode=disable"
  for r in $(pg_roles); do setdefault "$(upper "$r")_PG_PASSWORD" "$(read_secret "pg-$r")"; done
  for svc in $PG_SERVICES; do
    p=$(upper "$svc")
    pw=${p}_SVC_PG_PASSWORD; setdefault "${p}_DATABASE_URL" "postgres://${svc}_svc:${!pw}@$PG_HOST:$PG_PORT/${svc}_db?sslmode=disable"
    pw=${p}_OWNER_PG_PASSWORD; setdefault "${p}_MIGRATIONS_DATABASE_URL" "postgres://${svc}_owner:${!pw}@$PG_HOST:$PG_PORT/${svc}_db?sslmode=disable"
    setdefault "${p}_KAFKA_USERNAME" "$svc"
  done
  for p in $(kafka_principals); do setdefault "$(upper "$p")_KAFKA_PASSWORD" "$(read_secret "kafka-$p")"; done
  [ ! -r "$STACK/admin-token" ] || setdefault ADMIN_TOKEN "$(head -1 "$STACK/admin-token")"
  setdefault CONNECT_REST_PASSWORD "$(read_secret "connect-rest-$CONNECT_REST_USER")"
  # The console: the operator token, the viewer's Kafka login, its read-only PostgreSQL login.
  setdefault CONSOLE_ADMIN_TOKEN "${ADMIN_TOKEN:-}"
  setdefault CONSOLE_KAFKA_PASSWORD "${VIEWER_KAFKA_PASSWORD:-}"
  setdefault CONSOLE_DATABASE_URL "postgres://console:${CONSOLE_PG_PASSWORD:-}@$PG_HOST:$PG_PORT/postgres?sslmode=disable"
  # The payment gateway's merchant secret: the simulator's, the payment service's, and the tools'
  # and tests' that read its ledger.
  setdefault GATEWAY_MERCHANT_SECRET "$(read_secret gateway-merchant)"
  setdefault GATEWAYSIM_MERCHANT_SECRET "$GATEWAY_MERCHANT_SECRET"
  setdefault PAYMENT_GATEWAY_SECRET "$GATEWAY_MERCHANT_SECRET"
  # The webhook's signing secret (Standard Webhooks, whsec_…): the notification service signs, the
  # sink verifies; the sink's listing wants its read token.
  setdefault NOTIFICATION_WEBHOOK_SECRET "$(read_secret webhook-signing)"
  setdefault WEBHOOKSINK_SECRET "$NOTIFICATION_WEBHOOK_SECRET"
  setdefault WEBHOOKSINK_READ_TOKEN "$(read_secret webhooksink-reader)"
  # Customer tokens (EdDSA JWTs): the services verify with the public key; only the issuer (make
  # token, the tests and tools) holds the private one.
  setdefault CUSTOMER_TOKEN_PRIVATE_KEY "$(read_secret customer-token-key)"
  setdefault CUSTOMER_TOKEN_PUBLIC_KEY "$(read_secret customer-token-pub)"
}
export_credentials

# only_env NAME=VALUE... -- COMMAND ARGS...: runs COMMAND (exec: call it in a subshell or in the
# background) with an empty environment plus the NAME=VALUE pairs. The pairs are exported from
# within bash, not passed to env(1), so no password is ever on a command line.
only_env() {
  local pairs=() v
  while [ "$1" != -- ]; do pairs+=("$1"); shift; done
  shift
  local cmd; cmd=$(command -v "$1") || die "$1 not found"; shift
  local setpriv=; [ -z "${RUN_USER:-}" ] || setpriv=$(command -v setpriv) || die "setpriv not found (util-linux)"
  trap "" HUP # as nohup does: the process outlives the terminal
  for v in $(compgen -e); do unset "$v" 2>/dev/null || true; done
  for v in "${pairs[@]}"; do export "${v%%=*}=${v#*=}"; done
  if [ -n "${RUN_USER:-}" ]; then
    exec "$setpriv" --reuid="$RUN_USER" --regid="$RUN_GROUP" --clear-groups --inh-caps=-all --bounding-set=-all -- "$cmd" "$@"
  fi
  exec "$cmd" "$@"
}

# ---- the stack's OS user --------------------------------------------------------------------
# Run as root, make up starts Kafka, Kafka Connect, Prometheus, Alertmanager and the Go programs
# as an unprivileged OS user, STACK_USER (default outbox-saga, a system user without a home or a
# shell, made on first use), never as root; PostgreSQL runs as the postgres OS user. That user may
# enter .stack (0710) but list nothing in it, read the jars, the binaries and its components'
# configuration (group-readable, owned by root), and write only its components' data directories
# (owned by it; root never writes in them, so a symlink planted there leads root nowhere). The
# secrets stay root's (.stack/secrets, 0700): a program gets its own through its environment.
# STACK_USER=root keeps everything root's; a checkout the user cannot read (one in root's 0700
# home) does too, with a warning.
STACK_USER=${STACK_USER:-outbox-saga}
RUN_USER= RUN_GROUP=
# run_user_ready: when root, makes the stack's OS user and what it must reach, and sets RUN_USER
# and RUN_GROUP, which only_env drops to. Idempotent; call it before starting a component.
run_user_ready() {
  [ "$(id -u)" = 0 ] && [ "$STACK_USER" != root ] || return 0
  if ! id -u "$STACK_USER" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$STACK_USER" \
      || die "could not make the OS user $STACK_USER (useradd); STACK_USER=root runs the stack as root"
  fi
  local group; group=$(id -gn "$STACK_USER")
  if ! setpriv --reuid="$STACK_USER" --regid="$group" --clear-groups -- test -r "$ROOT/infra/kafka/log4j2.properties"; then
    [ -n "${RUN_USER_WARNED:-}" ] || printf '\033[33mwarning:\033[0m the OS user %s cannot read this checkout (%s): the stack runs as root. Clone it where other users can read it, or set STACK_USER=root to silence this.\n' "$STACK_USER" "$ROOT" >&2
    RUN_USER_WARNED=1
    return 0
  fi
  chgrp "$group" "$STACK" && chmod 0710 "$STACK"
  mkdir -p "$ROOT/bin" && chgrp -R "$group" "$ROOT/bin" && chmod -R u=rwX,g=rX,o= "$ROOT/bin"
  if [ -d "$LIB" ]; then chgrp -R "$group" "$LIB" && chmod -R u=rwX,g=rX,o= "$LIB"; fi
  RUN_USER=$STACK_USER RUN_GROUP=$group
}
# owned_by_run_user DIR: DIR and everything in it become the stack's OS user's (0700), unless
# it is that user's already: then root touches nothing in it (chown -h never follows a link).
owned_by_run_user() {
  [ -n "$RUN_USER" ] || return 0
  mkdir -p "$1"
  [ "$(stat -c %U "$1")" = "$RUN_USER" ] || chown -Rh "$RUN_USER:$RUN_GROUP" "$1"
  chmod 0700 "$1"
}

# random_secret: 32 random letters and digits (~190 bits; safe in URLs, JAAS and properties files).
random_secret() { head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 32; echo; }

# ensure_secrets: makes what is missing of the stack's secrets (never replaces one), the client
# configurations that carry them, and exports them (export_credentials). A stack whose data was
# made before it had credentials cannot be converted (its Kafka storage has no logins): it is
# refused with the way out.
ensure_secrets() {
  local r p
  if [ ! -d "$SECRETS" ] && [ ! -f "$STACK/kafka/data/meta.properties" ] && [ -f "$PG_DATA/PG_VERSION" ] && [[ $PG_DATA != "$STACK"/* ]]; then
    # The cluster outlives the checkout (it lives outside it as root): a checkout deleted without
    # make clean leaves it behind, and a new checkout at the same path finds it without its
    # passwords. Nothing of this stack can log in to it, and its Kafka (offsets, topics) is gone
    # with the old .stack: it is deleted, as make clean would have, unless its server still runs.
    local pid; pid=$(head -1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then
      die "a PostgreSQL cluster of an earlier checkout at this path is in $PG_DATA, without the passwords that went with that checkout's .stack, and its server still runs (pid $pid). Stop it (kill $pid), then: make clean && make up"
    fi
    printf '\033[33mwarning:\033[0m deleting the PostgreSQL cluster an earlier checkout at this path left in %s: its passwords went with that checkout'"'"'s .stack\n' "$PG_DIR" >&2
    rm -rf "$PG_DIR"
  fi
  if [ ! -d "$SECRETS" ] && { [ -f "$STACK/kafka/data/meta.properties" ] || [ -f "$PG_DATA/PG_VERSION" ]; }; then
    die "the stack in $STACK was made before this version, which gives every program its own credentials: its Kafka has no logins and its databases have the old well-known passwords. Start it over (this deletes its data): make clean && make up"
  fi
  mkdir -p "$STACK"
  # 0700, or 0710 for the stack's OS user's group (run_user_ready): entering, never listing.
  [ "$(stat -c '%a %G' "$STACK")" = "710 $(id -gn "$STACK_USER" 2>/dev/null)" ] || chmod 700 "$STACK"
  mkdir -p "$SECRETS"
  chmod 700 "$SECRETS"
  new_secret pg-superuser
  for r in $(pg_roles); do new_secret "pg-$r"; done
  for p in $(kafka_principals); do new_secret "kafka-$p"; done
  [ -s "$STACK/admin-token" ] || random_secret | write_secret "$STACK/admin-token"
  new_secret "connect-rest-$CONNECT_REST_USER"
  new_secret gateway-merchant
  new_secret webhooksink-reader
  [ -s "$SECRETS/webhook-signing" ] || echo "whsec_$(head -c 32 /dev/urandom | base64 -w0)" | write_secret "$SECRETS/webhook-signing"
  if [ ! -s "$SECRETS/customer-token-key" ] || [ ! -s "$SECRETS/customer-token-pub" ]; then
    local pem; pem=$(openssl genpkey -algorithm ed25519) || die "openssl could not make the customer token key"
    openssl pkey -outform DER <<<"$pem" | base64 -w0 | write_secret "$SECRETS/customer-token-key"
    openssl pkey -pubout -outform DER <<<"$pem" | base64 -w0 | write_secret "$SECRETS/customer-token-pub"
  fi
  client_configs
  export_credentials
}
new_secret() { [ -s "$SECRETS/$1" ] || random_secret | write_secret "$SECRETS/$1"; }

# client_configs: the logins of the command-line clients: .stack/connect-credentials (curl -u of
# Kafka Connect's REST API), .stack/kcat.conf (the viewer, for
# kcat -F and make tail), secrets/kcat-injector.conf (the test-only injector: kcat -P of poison),
# and for the Kafka tools (--command-config) as the admin and the viewer (make status).
client_configs() {
  local who pw
  echo "$CONNECT_REST_USER:$(read_secret "connect-rest-$CONNECT_REST_USER")" | write_secret "$CONNECT_CREDENTIALS"
  # (Passwords go into these files from bash's own read and heredocs: on no command line.)
  kcat_conf viewer "kcat -F .stack/kcat.conf -C -t order-events -f '%k %h %s\\n'   (make up writes this file)" \
    "the read-only principal viewer" | write_secret "$KCAT_CONF"
  kcat_conf injector "kcat -F .stack/secrets/kcat-injector.conf -P -t order-events   (tests and demos only)" \
    "the TEST-ONLY principal injector, which may write the event topics" | write_secret "$SECRETS/kcat-injector.conf"
  for who in admin viewer; do
    pw=$(read_secret "kafka-$who")
    write_secret "$SECRETS/kafka-$who.properties" <<CONF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$who" password="$pw";
CONF
  done
  rm -f "$SECRETS/kcat-admin.conf" # made by an earlier version of this function
  # Header files for curl -H @file: a secret sent without being on a command line.
  echo "Authorization: Bearer $(head -1 "$STACK/admin-token" 2>/dev/null)" | write_secret "$STACK/admin.header"
  echo "Authorization: Bearer $(read_secret webhooksink-reader)" | write_secret "$STACK/webhooksink.header"
  echo "Authorization: Bearer $(read_secret gateway-merchant)" | write_secret "$STACK/gateway.header"
  printf 'user = "%s:%s"\n' "$CONNECT_REST_USER" "$(read_secret "connect-rest-$CONNECT_REST_USER")" | write_secret "$STACK/connect.curlrc"
}

# kcat_conf PRINCIPAL USAGE WHO: kcat's configuration for PRINCIPAL's PLAIN login on this stack.
# The password goes into the file this prints (mode 0600), never onto a command line: read_secret
# is the shell's `read` builtin and cat gets the text on stdin (a heredoc), so no process carries it
# in /proc/*/cmdline.
kcat_conf() {
  cat <<CONF
# $2
# The broker of this stack, as $3 (infra/kafka/acls.conf). PLAIN,
# not SCRAM: Debian's kcat cannot log in to Kafka 4 with SCRAM (infra/kafka/server.properties).
bootstrap.servers=$KAFKA_BOOTSTRAP
security.protocol=SASL_PLAINTEXT
sasl.mechanisms=PLAIN
sasl.username=$1
sasl.password=$(read_secret "kafka-$1")
CONF
}

# connect_curl CURL-ARGS...: curl as the REST API's user (the password on a file descriptor, not
# on the command line, where every user of the host could read it in ps).
connect_curl() {
  curl -K <(printf 'user = "%s:%s"\n' "$CONNECT_REST_USER" "${CONNECT_REST_PASSWORD:-$(read_secret "connect-rest-$CONNECT_REST_USER")}") "$@"
}

# kafka_as PRINCIPAL: exports KAFKA_USERNAME and KAFKA_PASSWORD, which the tools and the tests log
# in to the broker with (test.sh and chaos.sh: the test-only injector).
kafka_as() { export KAFKA_USERNAME=$1; KAFKA_PASSWORD=$(read_secret "kafka-$1"); export KAFKA_PASSWORD; }

# How long a start waits for what a crashed process left behind (its exit, its backends,
# a lock, its port) before it gives up and names the process in the way.
LEFTOVER_TIMEOUT=${LEFTOVER_TIMEOUT:-60}

# ---- output ------------------------------------------------------------------------------

# say prints a progress line.
say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
# die prints an error and exits.
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }
# progress TEXT rewrites the current status line; progress_end TEXT finishes it. Into a log
# (not a terminal) they write a line at most every 5 seconds instead.
progress() {
  if [ -t 1 ]; then printf '\r\033[K    %s' "$*"; return; fi
  local now=${EPOCHREALTIME//[.,]/}
  (( now - ${_progress_at:-0} >= 5000000 )) || return 0
  _progress_at=$now
  printf '    %s\n' "$*"
}
progress_end() {
  _progress_at=0
  if [ -t 1 ]; then printf '\r\033[K    %s\n' "$*"; else printf '    %s\n' "$*"; fi
}

# since START_US: seconds (one decimal) since START_US, a ${EPOCHREALTIME//[.,]/} reading.
since() {
  local d=$(( ${EPOCHREALTIME//[.,]/} - $1 ))
  printf '%d.%d' $((d / 1000000)) $((d / 100000 % 10))
}

# await WHAT TIMEOUT CMD...: runs CMD every half second until it succeeds (returns 0) or
# TIMEOUT seconds have passed (returns 1), showing "waiting for WHAT ... Ns" meanwhile.
# Prints nothing when CMD succeeds at once; the caller says why it gave up and what to do.
await() {
  local what=$1 timeout=$2 t0=${EPOCHREALTIME//[.,]/} waited=; shift 2
  until "$@"; do
    if (( ${EPOCHREALTIME//[.,]/} - t0 >= timeout * 1000000 )); then
      [ -z "$waited" ] || progress_end "gave up waiting for $what after ${timeout}s"
      return 1
    fi
    waited=1; progress "waiting for $what ... $(since "$t0")s"
    sleep 0.5
  done
  [ -z "$waited" ] || progress_end "waited $(since "$t0")s for $what"
}

# ---- processes ----------------------------------------------------------------------------
# The supervisor is Go (tools/supervisor, tools/cmd/stack): it starts, identifies (pid, start
# time, executable: .stack/pids/<component>.pid), heals and stops every component.

# supervisor_env: exports the settings the supervisor reads that are not exported above.
supervisor_env() {
  export PG_DATA PG_DIR PG_LOG PG_OS_USER KAFKA_HOST KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_CONF KAFKA_HEAP \
    KCAT_CONF CONNECT_PORT CONNECT_CONF CONNECT_HEAP PROMETHEUS_PORT ALERTMANAGER_PORT PROMETHEUS_CONF \
    ALERTMANAGER_CONF RUN_USER RUN_GROUP LEFTOVER_TIMEOUT
}

# supervise up|down|status|start C...|stop [C...]|kill C|pid C|running: runs the supervisor
# (bin/stack, built from tools/cmd/stack) with this file's settings; up and start first make the
# stack's OS user ready (run_user_ready, when root), start the secrets too (up.sh made them), so
# that a component started alone has them.
supervise() {
  (cd "$ROOT/tools" && go build -o "$ROOT/bin/stack" ./cmd/stack) || die "build of tools/cmd/stack failed"
  case ${1:-} in start) ensure_secrets && run_user_ready ;; up) run_user_ready ;; esac
  supervisor_env
  "$ROOT/bin/stack" -root "$ROOT" "$@"
}

# ---- PostgreSQL ---------------------------------------------------------------------------

# as_pg_user CMD...: runs CMD as the Postgres OS user when we are root (from /: our working
# directory may be out of that user's reach, e.g. a checkout in root's home), with an
# environment of its own: our environment holds the stack's secrets, and that OS user can read
# the environment of its processes.
as_pg_user() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u "$PG_OS_USER" -- env -i PATH="$PATH" LANG=C.UTF-8 "$@")
  else
    "$@"
  fi
}

# pg_write FILE [-a]: writes (-a: appends) standard input to FILE as the PostgreSQL OS user. Every
# file in the cluster's directory is written so, never by root: that user owns the directory and
# could put a symlink where root would write, and root would follow it anywhere.
pg_write() {
  local op='>' rm='rm -f "$1"; '; [ "${2:-}" = -a ] && { op='>>'; rm=; }
  # (a file an older version of these scripts made as root is replaced, not written through)
  as_pg_user sh -c "umask 077; $rm cat $op \"\$1\"" sh "$1"
}

# pg_bin NAME: path of a PostgreSQL server binary (Debian keeps them out of PATH).
pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/$1" ] && { echo "$d/$1"; return; }
  done
  command -v "$1" || die "PostgreSQL server binary $1 not found (run scripts/install.sh)"
}

# psql_admin DB PSQL-ARGS...: runs psql as the superuser over TCP.
psql_admin() {
  local db=$1; shift
  PGPASSWORD=$PG_SUPERPASS psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_SUPERUSER" -d "$db" "$@"
}

# write_secret FILE: writes stdin to FILE with mode 0600 (every secret under .stack is written so).
write_secret() { (umask 077 && rm -f "$1" && cat >"$1"); }

# ---- Kafka --------------------------------------------------------------------------------

# kafka_classpath: the broker/worker classpath resolved by infra/maven/kafka.
kafka_classpath() { echo "$LIB/kafka/*"; }

# kafka_tool CLASS ARGS...: runs a Kafka command-line tool from the resolved jars.
kafka_tool() {
  local cls=$1; shift
  java -Xmx256m -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2-tools.properties" \
    -cp "$(kafka_classpath)" "$cls" "$@"
}
