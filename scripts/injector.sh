#!/usr/bin/env bash
# The test-only Kafka principal injector (infra/kafka/acls-test.conf): it may write the event
# topics (poison, duplicates) and move the services' groups, so it exists only while a test needs it.
#   scripts/injector.sh on    give it its SCRAM login and its ACLs (make test and make chaos do)
#   scripts/injector.sh off   take both away again (they do at the end, also when they fail)
# Its PLAIN login for kcat (.stack/secrets/kcat-injector.conf) is static in the broker's config:
# while it is off that login authenticates and may do nothing (no ACL names it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

apply() {
  [ -x "$ROOT/bin/kafkasetup" ] || (cd "$ROOT/tools" && go build -o "$ROOT/bin/kafkasetup" ./cmd/kafkasetup)
  KAFKA_USERNAME=admin KAFKA_PASSWORD=$(read_secret kafka-admin) "$ROOT/bin/kafkasetup" \
    -brokers "$KAFKA_BOOTSTRAP" -acls "$(acl_files)" "$@" -wait 30s >/dev/null
}

case ${1:-} in
  on) ensure_secrets; : >"$INJECTOR_MARK"; apply || die "could not give the injector its login and ACLs" ;;
  off) rm -f "$INJECTOR_MARK"; apply -drop-logins injector || die "could not take the injector's login and ACLs away: run scripts/injector.sh off again" ;;
  *) die "usage: $0 on|off" ;;
esac
