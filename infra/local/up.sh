#!/usr/bin/env bash
# Starts the local stack in the background: moto (SQS, DynamoDB and its streams, EventBridge), the AWS simulator
# (WorkSpaces, WorkDocs, DS Data, Directory Service) and the runner (functions, event source
# mappings, schedules). Writes .local/stack.env; `make down` stops everything by pid.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
state="$root/.local"
mkdir -p "$state/logs"

alive() { [[ -f "$state/pids" ]] && while read -r pid _; do kill -0 "$pid" 2>/dev/null && return 0; done < "$state/pids"; return 1; }
if alive; then
  echo "local stack already up (.local/pids); 'make down' first to restart it"
  exit 0
fi
rm -f "$state/pids" "$state/stack.env"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port name log
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start; its log ($3):" >&2; tail -20 "$3" >&2; exit 1
}
start() { # name log command...
  local name=$1 log=$2; shift 2
  nohup "$@" > "$log" 2>&1 &
  echo "$! $name" >> "$state/pids"
}

moto_port=$(free_port)
sim_port=$(free_port)
start moto "$state/logs/moto.log" "$root/.venv/bin/python" "$root/infra/local/moto_server.py" -H 127.0.0.1 -p "$moto_port"
start simulator "$state/logs/simulator.log" "$root/target/debug/aws-simulator" \
  --addr "127.0.0.1:$sim_port" --seed infra/local/seed.json --config infra/local/simulator.json
wait_port "$moto_port" moto "$state/logs/moto.log"
wait_port "$sim_port" simulator "$state/logs/simulator.log"

export AWS_REGION="${AWS_REGION:-us-east-1}" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
for svc in SQS DYNAMODB DYNAMODB_STREAMS EVENTBRIDGE; do
  export "AWS_ENDPOINT_URL_$svc=http://127.0.0.1:$moto_port"
done
for svc in WORKSPACES WORKDOCS DIRECTORY_SERVICE_DATA DIRECTORY_SERVICE; do
  export "AWS_ENDPOINT_URL_$svc=http://127.0.0.1:$sim_port"
done
export SIM_URL="http://127.0.0.1:$sim_port"
start runner "$state/logs/runner.log" "$root/target/debug/local-stack" \
  --stack infra/local/stack.json --bin-dir "$root/target/debug" \
  --schedule-every-s "${SCHEDULE_EVERY_S:-3}" --max-visibility-timeout-s "${MAX_VISIBILITY_S:-20}" \
  --env-file "$state/stack.env.tmp"
for _ in $(seq 1 300); do
  [[ -f "$state/stack.env.tmp" ]] && break
  alive || break
  sleep 0.1
done
if [[ ! -f "$state/stack.env.tmp" ]]; then
  echo "the runner did not start; its log:" >&2; tail -20 "$state/logs/runner.log" >&2
  bash "$root/infra/local/down.sh" >/dev/null; exit 1
fi
mv "$state/stack.env.tmp" "$state/stack.env"
echo "local stack up: source .local/stack.env (logs in .local/logs/, 'make down' to stop)"
