#!/usr/bin/env bash
# The published contracts, linted (make test runs it):
#   - schemas/asyncapi.yaml with the AsyncAPI parser (tools/asyncapi-lint: @asyncapi/parser from
#     the npm registry, installed with `npm ci` from its lock file into .stack/asyncapi-lint, run
#     with node), every JSON Schema under schemas/ the payload of one of its messages;
#   - the OpenAPI documents (schemas/openapi) are linted by kin-openapi in go test
#     (schemas/openapi TestDocumentsAreValid), and real answers are checked against them by the
#     e2e test TestResponsesMatchOpenAPI.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are missing (scripts/install.sh installs them)"

dir=$STACK/asyncapi-lint
src=$ROOT/tools/asyncapi-lint
mkdir -p "$dir"
cp "$src/package.json" "$src/package-lock.json" "$src/lint.mjs" "$dir/"
stamp=$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$dir/node_modules/.lock.sha256" 2>/dev/null)" != "$stamp" ]; then
  say "installing the AsyncAPI parser (npm ci, into ${dir#$ROOT/})"
  # --ignore-scripts: no package's install script runs (none is needed: all JavaScript).
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) || die "npm ci failed in $dir"
  echo "$stamp" >"$dir/node_modules/.lock.sha256"
fi
say "AsyncAPI: schemas/asyncapi.yaml"
# The committed schema files must each be a message (one still being written may not be yet).
mapfile -t tracked < <(git -C "$ROOT" ls-files 'schemas/*.v*.json' 2>/dev/null || true)
# One `ok`/`FAIL` line (make test counts them).
if out=$(cd "$ROOT" && node "$dir/lint.mjs" "$ROOT/schemas/asyncapi.yaml" "${tracked[@]/#/$ROOT/}" 2>&1); then
  echo "    ok   ${out##*$'\n'}"
else
  sed 's/^/      /' <<<"$out"
  printf '\033[31m    FAIL\033[0m %s\n' "schemas/asyncapi.yaml: the AsyncAPI parser found the errors above"
  exit 1
fi
