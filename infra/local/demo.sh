#!/usr/bin/env bash
# The main job on the local stack: post HR feeds (events/demo/N-*.json), follow every employee to
# the state events/demo/N-expected.json says, show the table, one person's history and the
# WorkSpaces API calls made.
# Exits non-zero if any employee does not reach the expected state. Stops the stack again if it
# started it.
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
bin="$root/target/debug"
# The profiles the local stack runs with: hrws audit lists their directories, as the auditor does.
WORKSPACE_PROFILES="$(.venv/bin/python -c 'import json; print(next(f for f in json.load(open("infra/local/stack.json"))["functions"] if f["name"] == "auditor")["environment"]["WORKSPACE_PROFILES"])')"
export WORKSPACE_PROFILES

echo "== smoke check: every endpoint answers"
"$bin/stack-check" | grep -E "^(runner|table|directory|smoke)" || { "$bin/stack-check"; exit 1; }
curl -fsS -X DELETE "$SIM_URL/_sim/calls" >/dev/null

phase() { # number feed title
  echo "== phase $1: $3"
  "$bin/hrws" post "events/demo/$1-$2.json" --unique-dedup
  "$bin/hrws" wait "events/demo/$1-expected.json" --timeout-s "${DEMO_TIMEOUT_S:-240}"
}
phase 1 joiners "30 joiners, one event sent twice, one invalid, one leaver before their WorkSpace exists"
phase 2 leavers "10 leavers, and one rehire (leave, then join again)"
phase 3 grace "a leave with a grace period of 18 s (access revoked, then terminated), a leave cancelled within its grace period (the same WorkSpace back)"
echo "== the rescinded leave: E2007"
"$bin/hrws" employee E2007
phase 4 burst "a burst of 6 leaves over the guard's limit (12 terminations a week locally): held, access revoked"
"$bin/hrws" guard
echo "== an operator confirms the leaves: hrws guard release"
"$bin/hrws" guard release
echo "== phase 5: the released terminations"
"$bin/hrws" wait events/demo/5-expected.json --timeout-s "${DEMO_TIMEOUT_S:-240}"
phase 6 movers "two movers: Sales to Design (same bundle: properties modified in place), Finance to Engineering (another bundle: migrated to a new WorkSpace); a move for a leaver, rejected"
echo "== the movers: E2002 (modified), E2003 (migrated), E2021 (rejected)"
"$bin/hrws" employee E2002
"$bin/hrws" employee E2003
echo "E2021 (left in phase 2):"
"$bin/hrws" employee E2021 | grep hr-2021-move
echo "== final state"
"$bin/hrws" status
echo "== one person's history: the rehire"
"$bin/hrws" employee E2005
echo "== the drift audit (hrws audit; the auditor function runs it daily): the table and WorkSpaces agree"
"$bin/hrws" audit | tee .local/audit-clean.txt
grep -q "drift: 0 mismatched, 0 missing, 0 orphaned, 0 unhealthy" .local/audit-clean.txt \
  || { echo "the audit found drift on a clean stack"; exit 1; }
echo "== behind the pipeline's back (the simulator's admin API): E2004's WorkSpace deleted in the console, one made by hand"
gone=$("$bin/hrws" employee E2004 | awk '$1 == "workspace" { print $2 }')
curl -fsS -X DELETE "$SIM_URL/_sim/workspaces/$gone"
curl -fsS -X POST "$SIM_URL/_sim/workspaces" -H 'content-type: application/json' \
  -d '{"DirectoryId":"d-9067a1b2c3","UserName":"[UNDEFINED]","WorkspaceName":"made-by-hand","BundleId":"wsb-stdwin2022"}'
echo
"$bin/hrws" audit | tee .local/audit-drift.txt
grep -q "drift: 0 mismatched, 1 missing, 1 orphaned, 0 unhealthy" .local/audit-drift.txt \
  || { echo "the audit did not find the deleted and the hand-made WorkSpace"; exit 1; }
"$bin/hrws" employee E2004 | grep -E "^(workspace|drift)|audit"
echo "== what the HR side heard: the lifecycle events on the bus, as its subscriber queue received them (the rehire E2005, then every drift found)"
"$bin/hrws" events --employee E2005 --detail-type "Drift Found" | tee .local/events.txt
grep -qE "WorkSpace Terminated +E2005" .local/events.txt || { echo "the rehire's terminated WorkSpace was not announced"; exit 1; }
grep -qE "lifecycle events: [0-9]+ received, [0-9]+ distinct: .*2 Drift Found" .local/events.txt \
  || { echo "the subscriber did not receive the two drift findings"; exit 1; }
echo
"$bin/stack-check" calls
echo
"$bin/stack-check" functions
