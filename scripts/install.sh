#!/usr/bin/env bash
# Installs what the native stack needs and is missing:
#   - Debian packages: PostgreSQL server, kcat, jq, curl, Prometheus and its Alertmanager, node,
#     npm and chromium (apt-get, needs root);
#   - Kafka broker + Connect worker jars and the Debezium Postgres connector plugin,
#     resolved from Maven Central by the poms under infra/maven (into .stack/lib).
# Safe to run again: it only does what is missing. Stops naming exactly what is
# missing when it cannot install it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
pg_server_present() { ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || have postgres; }

pg_server_present || need_apt+=(postgresql)
have psql || need_apt+=(postgresql-client)
have kcat || need_apt+=(kcat)
have jq || need_apt+=(jq)
have curl || need_apt+=(curl)
have java || need_apt+=(openjdk-17-jre-headless)
have mvn || need_apt+=(maven)
# Prometheus (with promtool) and Alertmanager: scripts/prometheus.sh runs them for this stack.
have prometheus || need_apt+=(prometheus)
have prometheus-alertmanager || need_apt+=(prometheus-alertmanager)
# node and npm: make test lints schemas/asyncapi.yaml with the AsyncAPI parser (scripts/contracts-test.sh).
have node || need_apt+=(nodejs)
have npm || need_apt+=(npm)
# the console's browser test drives Debian's chromium headless (chromedp downloads nothing)
have chromium || need_apt+=(chromium)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && have apt-get; then
    say "installing Debian packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # The Debian postgresql package would start its own cluster on 5432, prometheus its own
    # server on 9090 (alertmanager on 9093, Kafka's controller port); we run private ones
    # instead, so keep the packages' services from starting.
    if printf '%s\n' "${need_apt[@]}" | grep -qxE 'postgresql|prometheus|prometheus-alertmanager'; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    die "missing Debian packages: ${need_apt[*]} (install them with: sudo apt-get install ${need_apt[*]})"
  fi
fi
have go || die "Go is missing: install Go 1.26 or newer (https://go.dev/dl) and put it on PATH"
id "$PG_OS_USER" >/dev/null 2>&1 || [ "$(id -u)" != 0 ] || useradd --system --no-create-home "$PG_OS_USER"

# resolve DIR POM [EXTRA MAVEN ARGS...]: copies the runtime jars of POM into DIR,
# unless DIR already holds the jars of this exact POM.
resolve() {
  local dir=$1 pom=$2; shift 2
  local sum; sum=$(sha256sum "$pom" | cut -d' ' -f1)
  if [ -f "$dir/.pom.sha256" ] && [ "$(cat "$dir/.pom.sha256")" = "$sum" ]; then return; fi
  say "resolving $(basename "$(dirname "$pom")") jars from Maven Central into ${dir#$ROOT/}"
  rm -rf "$dir"
  mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$dir" -DincludeScope=runtime "$@" \
    || die "Maven could not resolve $pom (is Maven Central reachable?)"
  echo "$sum" > "$dir/.pom.sha256"
}
resolve "$LIB/kafka" "$ROOT/infra/maven/kafka/pom.xml"
# The plugin gets neither Kafka's nor SLF4J's jars: the worker provides both, and a
# second copy inside the plugin directory would shadow them.
resolve "$LIB/plugins/debezium-connector-postgres" "$ROOT/infra/maven/debezium/pom.xml" \
  -DexcludeGroupIds=org.apache.kafka,org.slf4j
