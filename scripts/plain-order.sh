#!/usr/bin/env bash
# Places one plain order on the running stack and waits until it is COMPLETED: the smallest
# proof that the whole pipeline works (HTTP → outbox → Debezium → Kafka → consumers → back).
#   scripts/plain-order.sh [TIMEOUT_SECONDS]     (default 120)
# The tests place their orders here only: adapt this file when the API changes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
timeout=${1:-120}
sku=PLAIN-1

# Operator endpoints take the stack's admin token. curl reads the header from a file descriptor,
# so that no command line shows the token.
token=${ADMIN_TOKEN:-$(cat "$STACK/admin-token" 2>/dev/null || true)}
[ -n "$token" ] || die "no operator token: $STACK/admin-token is missing (bring the stack up: make up)"

# call METHOD URL [BODY]: prints the answer's body, then its status on a line of its own.
call() {
  curl -sS -m 10 -X "$1" "$2" -H @<(printf 'Authorization: Bearer %s\n' "$token") \
    -H 'Content-Type: application/json' ${3:+-d "$3"} -w '\n%{http_code}' \
    || echo $'\n000'
}
status_of() { echo "${1##*$'\n'}"; }
body_of() { echo "${1%$'\n'*}"; }

res=$(call PUT "$ORDER_URL/prices/$sku" '{"unitPrice": 15000, "currency": "KRW"}')
[ "$(status_of "$res")" = 200 ] || die "PUT $ORDER_URL/prices/$sku answered $(status_of "$res"): $(body_of "$res")"
res=$(call PUT "$INVENTORY_URL/stock/$sku" '{"available": 1000}')
[ "$(status_of "$res")" = 200 ] || die "PUT $INVENTORY_URL/stock/$sku answered $(status_of "$res"): $(body_of "$res")"

# Orders and their reads are a customer's: a token minted with the stack's key (make token), sent
# from a file descriptor too.
[ -n "${CUSTOMER_TOKEN_PRIVATE_KEY:-}" ] || die "no customer token key: CUSTOMER_TOKEN_PRIVATE_KEY is not set (bring the stack up: make up)"
ctoken=$(cd "$ROOT/tools" && go run ./cmd/token -customer U-plain -ttl 10m) || die "cannot mint a customer token"
res=$(token=$ctoken call POST "$ORDER_URL/orders" \
  '{"customerId":"U-plain","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"'"$sku"'","qty":1,"unitPrice":15000}]}')
[ "$(status_of "$res")" = 202 ] || die "POST $ORDER_URL/orders answered $(status_of "$res"): $(body_of "$res")"
id=$(body_of "$res" | jq -r .orderId)

t0=${EPOCHREALTIME//[.,]/}
order_status() { token=$ctoken call GET "$ORDER_URL/orders/$id" | head -n -1 | jq -r '.status + (if (.reason // "") != "" then " " + .reason else "" end)' 2>/dev/null; }
completed() {
  st=$(order_status)
  case $st in COMPLETED) return 0 ;; CANCELED*) die "order $id ended $st instead of COMPLETED" ;; esac
  return 1
}
await "order $id to complete" "$timeout" completed \
  || die "order $id is still ${st:-unknown} after ${timeout}s (make status shows connectors and consumer lag)"
echo "    plain order $id COMPLETED after $(since "$t0")s"
