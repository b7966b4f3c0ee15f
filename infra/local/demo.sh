#!/usr/bin/env bash
# The main job on the local stack. Until the onboarding and offboarding functions land, it
# brings the stack up and runs the smoke check; it stops the stack again if it started it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
started=0
if [[ ! -f .local/stack.env ]]; then
  bash infra/local/up.sh
  started=1
fi
stop() { [[ $started == 1 ]] && bash infra/local/down.sh >/dev/null; }
trap stop EXIT
# shellcheck disable=SC1091
source .local/stack.env
"$root/target/debug/stack-check"
