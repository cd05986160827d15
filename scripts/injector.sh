#!/usr/bin/env bash
# The test-only Kafka principal injector (infra/kafka/acls-test.conf): it may write the event
# topics (poison, duplicates) and move the services' groups, so it exists only while a test needs it.
#   scripts/injector.sh on    give it its SCRAM login and its ACLs (make test and make chaos do)
#   scripts/injector.sh off   take both away again (they do at the end, also when they fail)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
supervise injector "$@"
