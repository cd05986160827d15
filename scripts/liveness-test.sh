#!/usr/bin/env bash
# The process checks of scripts/lib.sh, against stand-in processes, in a throwaway stack
# directory (no Kafka or services needed; a small PostgreSQL cluster is created and deleted):
#   - "running" means the recorded pid is that component: not a reused pid, not a zombie,
#     not a pid file left by a killed process, not the same program of another stack;
#   - a stop never signals a process that is not the component, and forces one that ignores SIGTERM;
#   - a start waits for a lock or a port held by another process, gives up naming it, and
#     never removes the lock;
#   - PostgreSQL: a start after a SIGKILL of the postmaster works at once; a lock file naming a
#     pid that now belongs to another process is stale and is replaced; while a process of the
#     cluster still runs the lock stays and the start gives up naming it.
# `make test` runs it; it takes about 20 seconds.
set -euo pipefail
tmp=$(mktemp -d "${TMPDIR:-/tmp}/outbox-saga-liveness.XXXXXX")
# A throwaway stack with its own ports (STACK_PORT_OFFSET+700); lib.sh reads these.
export STACK_DIR=$tmp/stack
export PG_PORT=$((5432 + ${STACK_PORT_OFFSET:-0} + 700))
export KAFKA_PORT=$((9092 + ${STACK_PORT_OFFSET:-0} + 700)) KAFKA_CONTROLLER_PORT=$((9093 + ${STACK_PORT_OFFSET:-0} + 700))
. "$(dirname "$0")/lib.sh"
mkdir -p "$PIDS" "$LOGS" "$STACK/kafka/data" "$STACK/connect"

# The stand-ins are ended at exit: each recorded as pid:start time, so that a pid the kernel
# has given to another process meanwhile is left alone.
helpers=()
started_at() { local s; read -r s 2>/dev/null <"/proc/$1/stat" && s=${s##*) } && echo "$s" | cut -d' ' -f20; }
keep() { helpers+=("$1:$(started_at "$1")"); }
finish() {
  local rc=$? h
  for h in "${helpers[@]}"; do
    [ "$(started_at "${h%%:*}")" = "${h#*:}" ] && kill -KILL "${h%%:*}" 2>/dev/null || true
  done
  "$ROOT/scripts/postgres.sh" clean >/dev/null 2>&1 || true
  rm -rf "$tmp"
  exit $rc
}
trap finish EXIT

checks=0
ok() { checks=$((checks + 1)); echo "    ok: $*"; }
fail() { die "liveness test: $*"; }
# bg CMD...: starts a stand-in in the background; its pid is in $bg_pid.
bg() { "$@" >/dev/null 2>&1 & bg_pid=$!; disown; keep "$bg_pid"; }
record() { echo "$2" >"$PIDS/$1.pid"; }

say "liveness: a recorded pid counts only if it is the component"
# A stand-in broker: a process whose command line is that of this stack's Kafka.
bg bash -c 'while :; do sleep 0.2; done' kafka.Kafka "$KAFKA_CONF"
fake=$bg_pid; record kafka "$fake"
alive kafka || fail "a process with Kafka's command line (pid $fake) is not seen as running"
ok "a process with this stack's Kafka command line is running Kafka"

bg sleep 60
other=$bg_pid; record kafka "$other"
kill -0 "$other" && ! alive kafka || fail "pid $other (sleep) is taken for Kafka"
ok "a pid file naming another live process (a reused pid) is not Kafka, though kill -0 succeeds"
kill -KILL "$fake"

# A zombie: a stand-in whose parent never reaps it (the parent execs into sleep).
bg bash -c 'bash -c "while :; do sleep 0.2; done" kafka.Kafka "$0" & exec sleep 60' "$KAFKA_CONF"
children() { cat "/proc/$1/task/$1/children" 2>/dev/null; }
has_child() { [ -n "$(children "$1")" ]; }
await "the stand-in's child" 5 has_child "$bg_pid" >/dev/null || fail "the stand-in has no child"
fake=$(children "$bg_pid"); fake=${fake%% *}; keep "$fake"
record kafka "$fake"
alive kafka || fail "the stand-in $fake is not seen as running Kafka"
kill -KILL "$fake"
await "the stand-in to be a zombie" 5 test "$(proc_state "$fake")" = Z >/dev/null || true
[ "$(proc_state "$fake")" = Z ] || fail "stand-in $fake is not a zombie ($(proc_state "$fake"))"
kill -0 "$fake" && ! alive kafka || fail "the zombie $fake is taken for Kafka"
ok "a killed process not yet reaped by its parent (a zombie) is not running, though kill -0 succeeds"
kill -KILL "$bg_pid" # its parent: now the zombie is reaped
await "the zombie to be reaped" 10 test ! -e "/proc/$fake" >/dev/null || true
! alive kafka || fail "the pid file of a killed process is taken for Kafka"
ok "the pid file of a killed (and reaped) process is not running"

# A Go program: bin/<name> of this checkout with this STACK_DIR and its address, not another
# stack's and not a second instance on another address (the chaos run starts those).
bg bash -c "exec -a '$ROOT/bin/order' sleep 60"
mine=$bg_pid; record order "$mine"
alive order || fail "bin/order of this stack (pid $mine) is not seen as running"
bg env STACK_DIR=/elsewhere bash -c "exec -a '$ROOT/bin/order' sleep 60"
record order "$bg_pid"
! alive order || fail "bin/order of another STACK_DIR is taken for this stack's order"
bg env ORDER_HTTP_ADDR=127.0.0.1:1 bash -c "exec -a '$ROOT/bin/order' sleep 60"
record order "$bg_pid"
! alive order || fail "a second bin/order on another address is taken for this stack's order"
ok "bin/order counts if it runs with this STACK_DIR and ORDER_HTTP_ADDR, not with another"

# A lost pid file: a start adopts the running component instead of starting a second one.
rm -f "$PIDS/order.pid"
[ "$(find_component order)" = "$mine" ] || fail "find_component order found '$(find_component order)', want $mine"
adopt order >/dev/null && [ "$(pid_of order)" = "$mine" ] || fail "adopt did not record pid $mine"
ok "with its pid file lost, the running order (pid $mine) is found and recorded, not started twice"
kill -KILL "$mine"

say "stop: never a stranger, and by force when SIGTERM is ignored"
record order "$other"
stop_component order TERM 1 >/dev/null
kill -0 "$other" 2>/dev/null || fail "stop signalled pid $other, which is not the order service"
[ ! -e "$PIDS/order.pid" ] || fail "stop left the stale pid file"
ok "stopping with a stale pid file removes the file and signals no other process"
bg bash -c 'trap "" TERM; while :; do sleep 0.2; done' kafka.Kafka "$KAFKA_CONF"
record kafka "$bg_pid"
out=$(stop_component kafka TERM 1 2>&1) || fail "stop failed: $out"
! kill -0 "$bg_pid" 2>/dev/null || [ "$(proc_state "$bg_pid")" = Z ] || fail "stop left a process that ignores SIGTERM"
grep -q 'sending SIGKILL' <<<"$out" || fail "stop did not say it forced the process: $out"
ok "a process that ignores SIGTERM is killed after the grace period, and stop says so"

say "start: waits for a lock or a port held by another process, and names it"
lock=$STACK/kafka/data/.lock
bg bash -c 'exec 9>"$0" && flock 9 && exec sleep 60' "$lock" # one process holds the lock
sleep 0.3
holder=$(lock_holders "$lock" | head -1)
[ -n "$holder" ] || fail "no holder found for the lock on $lock"
out=$(LEFTOVER_TIMEOUT=2 "$ROOT/scripts/kafka.sh" start 2>&1) && fail "kafka started although its log directory is locked"
grep -q "locked by pid $holder" <<<"$out" || fail "the error does not name the lock's holder (pid $holder): $out"
[ -e "$lock" ] && kill -0 "$holder" || fail "the lock file or its holder is gone"
ok "a locked Kafka log directory: gave up after 2 s naming pid $holder; the lock was left alone"
kill -KILL "$holder"
await "the lock to be released" 5 lock_free "$lock" >/dev/null || fail "the lock is still held after its holders died"

bg perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$ARGV[0]", Listen => 1, ReuseAddr => 1) or die; sleep 60' "$KAFKA_PORT"
listener=$bg_pid
await "the stand-in listener" 5 port_in_use "$KAFKA_PORT" >/dev/null || fail "the stand-in does not listen on $KAFKA_PORT"
out=$(PORT_TIMEOUT=1 "$ROOT/scripts/kafka.sh" start 2>&1) && fail "kafka started although its port is taken"
grep -q "port $KAFKA_PORT is in use by pid $listener" <<<"$out" && grep -q KAFKA_PORT= <<<"$out" \
  || fail "the error does not name the port's holder (pid $listener) and the setting: $out"
ok "a taken port: gave up naming pid $listener and KAFKA_PORT"
kill -KILL "$listener"

say "PostgreSQL: start after a crash, stale and live lock files"
"$ROOT/scripts/postgres.sh" start >"$LOGS/liveness-pg.log" 2>&1 || { cat "$LOGS/liveness-pg.log"; fail "the cluster did not come up"; }
[ "$(stat -c %a "$PG_DATA")" = 700 ] || fail "data directory mode $(stat -c %a "$PG_DATA")"
ok "a cluster in $PG_DIR (data directory mode 700)"

pm=$(pid_of postgres)
kill -KILL "$pm"
"$ROOT/scripts/postgres.sh" start >>"$LOGS/liveness-pg.log" 2>&1 || { tail -20 "$LOGS/liveness-pg.log"; fail "no start right after a SIGKILL of the postmaster"; }
alive postgres && [ "$(pid_of postgres)" != "$pm" ] || fail "postgres is not running again"
ok "started at once after a SIGKILL of the postmaster (pid $pm)"

# The postmaster's pid taken by another process of the server's OS user: PostgreSQL itself would
# refuse to start ("Is another postmaster running?"); the lock is stale and must be replaced.
pm=$(pid_of postgres)
kill -KILL "$pm"
await "the killed cluster to exit" 30 pg_cluster_gone >/dev/null || fail "the killed cluster's processes stay"
bg as_pg_user sleep 60
sleep 0.3
stranger=$(pgrep -u "$(as_pg_user id -u)" -x sleep -n) || fail "no stand-in process of the $PG_OS_USER user"
keep "$stranger"
sed -i "1s/.*/$stranger/" "$PG_DATA/postmaster.pid"
out=$("$ROOT/scripts/postgres.sh" start 2>&1) || fail "no start with a stale lock naming pid $stranger: $out"
grep -q "removing the stale" <<<"$out" && alive postgres || fail "the stale lock was not replaced: $out"
kill -0 "$stranger" || fail "the process named by the stale lock was signalled"
ok "a lock naming a pid that is now another process (pid $stranger) is stale: replaced, the process left alone"

# A process of the cluster still runs (a stand-in with the data directory as its working
# directory, as every backend has): the lock is not touched and the start gives up naming it.
pm=$(pid_of postgres)
kill -KILL "$pm"
await "the killed cluster to exit" 30 pg_cluster_gone >/dev/null || fail "the killed cluster's processes stay"
bg as_pg_user bash -c "cd '$PG_DATA' && exec sleep 60"
sleep 0.3
backend=$(pgrep -u "$(as_pg_user id -u)" -x sleep -n)
keep "$backend"
before=$(cat "$PG_DATA/postmaster.pid")
out=$(LEFTOVER_TIMEOUT=2 "$ROOT/scripts/postgres.sh" start 2>&1) && fail "postgres started while a process of its cluster runs"
grep -q "pid $backend" <<<"$out" || fail "the error does not name pid $backend: $out"
[ "$(cat "$PG_DATA/postmaster.pid")" = "$before" ] || fail "the lock file was changed while a process of the cluster runs"
ok "while a process of the cluster runs (pid $backend) the lock stays, and the start gives up naming it"
kill -KILL "$backend"
"$ROOT/scripts/postgres.sh" start >>"$LOGS/liveness-pg.log" 2>&1 || fail "no start once the stand-in is gone"
"$ROOT/scripts/postgres.sh" clean >>"$LOGS/liveness-pg.log" 2>&1 || fail "clean failed"
[ ! -e "$PG_DIR" ] || fail "clean left $PG_DIR"
ok "clean stops the cluster and deletes $PG_DIR"

say "liveness test: $checks checks passed"
