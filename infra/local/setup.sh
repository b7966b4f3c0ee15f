#!/usr/bin/env bash
# Installs what the local stack, the tests and the template checks need, into the repo
# (.venv, .venv-infra), idempotently.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"

# venv requirements-file: create the venv and install the pinned requirements when they change.
install() {
  local venv="$root/$1" req="$root/$2"
  local stamp="$venv/.requirements.sha256" want
  want="$(sha256sum "$req" | cut -d' ' -f1)"
  if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
  fi
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
}

# Both at once: pip spends most of its time waiting on downloads and unpacking.
# moto, cargo-lambda, jsonschema: the local stack and the tests.
install .venv infra/local/requirements.txt &
local_stack=$!
# cfn-lint and the SAM CLI: template checks. Their own venv, so their pins never meet moto's.
install .venv-infra infra/requirements-infra.txt &
template_checks=$!
wait "$local_stack"
wait "$template_checks"
