#!/usr/bin/env bash
# `make up` works from any checkout. Clones this repository (its committed HEAD) with
# `git clone` into a fresh directory of mode 0700 (as root that is out of the postgres OS
# user's reach, like root's home), and there, with a newcomer's environment and its own ports:
# `make up`, a plain order, `make clean`. Then checks that nothing of that stack is left: no
# process, no PostgreSQL directory.
#   scripts/clone-test.sh        CLONE_TEST_PORT_OFFSET (default STACK_PORT_OFFSET+500) moves its
#                                ports; CLONE_TEST_KEEP=1 keeps the clone (stopped) for a look
set -euo pipefail
. "$(dirname "$0")/lib.sh"

offset=${CLONE_TEST_PORT_OFFSET:-$((OFFSET + 500))}
parent=$(mktemp -d "${TMPDIR:-/tmp}/outbox-saga-clone.XXXXXX") # mode 0700
clone=$parent/outbox-saga

# The clone runs with a newcomer's environment: the system's and the toolchains' variables,
# none of this stack's (lib.sh exported its ports, URLs and STACK_DIR).
env_keep=()
for v in $(compgen -e); do
  if [[ $v =~ ^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LC_[A-Z]+|TZ|TMPDIR|TERM|GO[A-Z0-9_]*|JAVA_HOME|MAVEN_[A-Z_]+|M2_HOME|[A-Za-z_]*_proxy|[A-Z_]*_PROXY|SSL_CERT_FILE|SSL_CERT_DIR|CURL_CA_BUNDLE|PG_DIR_BASE|PG_OS_USER)$ ]]; then
    env_keep+=("$v=${!v}")
  fi
done
in_clone() { (cd "$clone" && env -i "${env_keep[@]}" STACK_PORT_OFFSET="$offset" "$@"); }
# clone_var NAME: a setting as the clone's scripts/lib.sh computes it.
clone_var() { in_clone bash -c ". scripts/lib.sh && echo \"\$$1\""; }

# leftovers: live processes that belong to the clone's stack (its path in their command line
# or environment, or the clone's PostgreSQL data directory as working directory).
leftovers() {
  local pid
  for pid in $( (grep -lsF -- "$clone" /proc/[0-9]*/cmdline /proc/[0-9]*/environ || true) | cut -d/ -f3 | sort -u); do
    [ "$pid" != $$ ] && [ "$pid" != "$BASHPID" ] && proc_live "$pid" && describe_pid "$pid" && echo
  done
  if [ -n "${pg_data:-}" ] && [ -d "$pg_data" ]; then
    { find /proc/[0-9]*/cwd -maxdepth 0 -lname "$(glob_escape "$(realpath "$pg_data")")" 2>/dev/null || true; } | cut -d/ -f3
  fi
  return 0
}

finish() {
  local rc=$?
  if [ $rc != 0 ] && [ -d "$clone" ]; then
    echo "---- the clone's logs (tails) ----"
    for f in "$clone"/.stack/logs/*.log; do [ -e "$f" ] && { echo "-- $f"; tail -n 15 "$f"; }; done
    in_clone make clean >/dev/null 2>&1 || true
  fi
  if [ "${CLONE_TEST_KEEP:-}" = 1 ]; then echo "    kept $clone"; else rm -rf "$parent"; fi
  exit $rc
}
trap finish EXIT

say "git clone $ROOT into $parent (mode $(stat -c %a "$parent"))"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
  echo "    note: the clone holds the committed HEAD, not the uncommitted changes of $ROOT"
fi
git clone -q "$ROOT" "$clone"
if [ "$(id -u)" = 0 ]; then
  ! as_pg_user test -x "$clone" \
    || die "the $PG_OS_USER OS user can enter $clone: this test would prove nothing (TMPDIR=${TMPDIR:-/tmp}?)"
  echo "    the $PG_OS_USER OS user cannot enter the clone (as in a 0700 home directory)"
fi

pg_data=$(clone_var PG_DATA)
say "make up in the clone (STACK_PORT_OFFSET=$offset)"
t0=${EPOCHREALTIME//[.,]/}
in_clone make up >"$LOGS/clone-test-up.log" 2>&1 \
  || { tail -n 30 "$LOGS/clone-test-up.log"; die "make up failed in the clone (log: $LOGS/clone-test-up.log)"; }
up_s=$(since "$t0")
echo "    make up: ${up_s}s (log: ${LOGS#$ROOT/}/clone-test-up.log)"

# The data directory: 0700, owned by the server's OS user (the postgres user as root).
owner=$( [ "$(id -u)" = 0 ] && echo "$PG_OS_USER" || id -un)
[ "$(stat -c '%a %U' "$pg_data")" = "700 $owner" ] \
  || die "the clone's data directory $pg_data is $(stat -c '%a %U' "$pg_data"), want 700 $owner"
echo "    its PostgreSQL data directory: $pg_data (mode 700, owner $owner)"

say "a plain order in the clone's stack"
in_clone scripts/plain-order.sh 120 || die "no plain order completed in the clone's stack"

say "make clean in the clone"
in_clone make clean >"$LOGS/clone-test-clean.log" 2>&1 \
  || { tail -n 30 "$LOGS/clone-test-clean.log"; die "make clean failed in the clone"; }
[ ! -e "$pg_data" ] || die "make clean left the clone's PostgreSQL data directory $pg_data"
[ ! -e "$clone/.stack" ] || die "make clean left $clone/.stack"
left=$(leftovers)
[ -z "$left" ] || die "processes of the clone's stack still run after make clean: $left"

say "clone test: make up, a plain order and make clean work in a fresh clone under a 0700 directory"
echo "    make up ${up_s}s (Maven resolving the jars into the clone's .stack included), all $(since "$t0")s"
