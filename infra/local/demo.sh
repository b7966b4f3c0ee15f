#!/usr/bin/env bash
# The main job on the local stack: post a feed of HR joiners (with a duplicate and an invalid
# event), follow them to their final state, show the table and the WorkSpaces API calls made.
# Exits non-zero if any employee does not reach the expected state. Stops the stack again if it
# started it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
feed="${FEED:-events/demo/feed.json}"
expect="${EXPECT:-events/demo/expected.json}"
started=0
if [[ ! -f .local/stack.env ]]; then
  bash infra/local/up.sh
  started=1
fi
stop() { [[ $started == 1 ]] && bash infra/local/down.sh >/dev/null; }
trap stop EXIT
# shellcheck disable=SC1091
source .local/stack.env
bin="$root/target/debug"

echo "== smoke check: every endpoint answers"
"$bin/stack-check" | grep -E "^(runner|table|directory|smoke)" || { "$bin/stack-check"; exit 1; }
curl -fsS -X DELETE "$SIM_URL/_sim/calls" >/dev/null

echo "== posting $feed"
"$bin/hrws" post "$feed" --unique-dedup
echo "== waiting for every employee (intake → provisioner after its batching window → reconciler)"
"$bin/hrws" wait "$expect" --timeout-s "${DEMO_TIMEOUT_S:-240}"
echo "== final state"
"$bin/hrws" status
echo "== one person's history"
"$bin/hrws" employee E2004
echo
"$bin/stack-check" calls
