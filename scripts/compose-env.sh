#!/usr/bin/env bash
# `make compose-env`: the secrets of the docker compose stack, in the .env that docker compose
# reads next to docker-compose.yml (mode 0600, git-ignored). Random, one per role and principal,
# like the native stack's .stack/secrets (scripts/lib.sh, ensure_secrets): the PostgreSQL superuser
# (PG_SUPERPASS), every role of every service database (<ROLE>_PG_PASSWORD), every Kafka principal
# of infra/kafka/acls.conf (<PRINCIPAL>_KAFKA_PASSWORD, admin included; not acls-test.conf's
# injector, which this stack, run by no test, does not have), the operator token (ADMIN_TOKEN), the
# password of Connect's REST API (CONNECT_REST_PASSWORD, user operator), the payment gateway's
# merchant secret (GATEWAY_MERCHANT_SECRET), the webhook signing secret (WEBHOOK_SIGNING_SECRET,
# whsec_<base64 of 32 random bytes>, the Standard Webhooks format), the webhook sink's read token
# (WEBHOOKSINK_READ_TOKEN) and the customer tokens' Ed25519 key pair (CUSTOMER_TOKEN_PUBLIC_KEY:
# base64 of the PKIX DER public key, for the services; CUSTOMER_TOKEN_PRIVATE_KEY: base64 of the
# PKCS#8 DER private key, for whoever issues tokens from this file, given to no container).
# A variable already in .env is kept (the database volume was initialized with it); a missing one
# is added (the key pair as a pair: when one half is missing, both are made anew).
# docker-compose.yml has no default for any of them: without this file it refuses to start.
#   scripts/compose-env.sh            write or complete .env
#   scripts/compose-env.sh --print    print a fresh set instead (make test checks the compose file with it)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# The customer tokens' key pair, made together (see names).
KEY_PAIR="CUSTOMER_TOKEN_PRIVATE_KEY CUSTOMER_TOKEN_PUBLIC_KEY"

# names: every variable the compose file needs, and the customer tokens' private key.
names() {
  local r p
  echo PG_SUPERPASS
  for r in $(pg_roles); do echo "$(upper "$r")_PG_PASSWORD"; done
  # The principals of acls.conf only (lib.sh's kafka_principals adds the test-only injector).
  { echo admin; awk '!/^[[:space:]]*(#|$)/ { print $1 }' "$ROOT/infra/kafka/acls.conf"; } | sort -u \
    | while read -r p; do echo "$(upper "$p")_KAFKA_PASSWORD"; done
  echo ADMIN_TOKEN
  echo CONNECT_REST_PASSWORD
  echo GATEWAY_MERCHANT_SECRET
  echo WEBHOOK_SIGNING_SECRET
  echo WEBHOOKSINK_READ_TOKEN
  echo $KEY_PAIR | tr ' ' '\n'
}

# value NAME: a fresh value for NAME (not the key pair's halves: key_pair).
value() {
  case $1 in
    WEBHOOK_SIGNING_SECRET) echo "whsec_$(head -c 32 /dev/urandom | base64 -w0)" ;;
    *) random_secret ;;
  esac
}

# key_pair: CUSTOMER_TOKEN_PRIVATE_KEY=… and CUSTOMER_TOKEN_PUBLIC_KEY=… lines of a fresh Ed25519
# pair, as ensure_secrets makes the native stack's (the key goes through stdin, never argv).
key_pair() {
  local pem priv pub
  pem=$(openssl genpkey -algorithm ed25519) || die "openssl could not make the customer token key"
  priv=$(openssl pkey -outform DER <<<"$pem" | base64 -w0)
  pub=$(openssl pkey -pubout -outform DER <<<"$pem" | base64 -w0)
  [ -n "$priv" ] && [ -n "$pub" ] || die "openssl could not write the customer token key pair"
  echo "CUSTOMER_TOKEN_PRIVATE_KEY=$priv"
  echo "CUSTOMER_TOKEN_PUBLIC_KEY=$pub"
}

in_pair() { [[ " $KEY_PAIR " == *" $1 "* ]]; }

if [ "${1:-}" = --print ]; then
  for n in $(names); do in_pair "$n" || echo "$n=$(value "$n")"; done
  key_pair
  exit 0
fi

env=$ROOT/.env
[ -e "$env" ] || { echo "# docker compose's secrets (scripts/compose-env.sh; never commit this file)" | write_secret "$env"; }
chmod 600 "$env"
added=0
for n in $(names); do
  in_pair "$n" && continue
  grep -q "^$n=" "$env" || { echo "$n=$(value "$n")" >>"$env"; added=$((added + 1)); }
done
if ! grep -q '^CUSTOMER_TOKEN_PRIVATE_KEY=' "$env" || ! grep -q '^CUSTOMER_TOKEN_PUBLIC_KEY=' "$env"; then
  # Half a pair is no pair: both anew (the public key is in no database, nothing else depends on it).
  kept=$(grep -vE '^CUSTOMER_TOKEN_(PRIVATE|PUBLIC)_KEY=' "$env" || true)
  { printf '%s\n' "$kept"; key_pair; } | write_secret "$env"
  added=$((added + 2))
fi
say "${env#$ROOT/}: $added secrets added, $(names | wc -l) in all (mode $(stat -c %a "$env"))"
