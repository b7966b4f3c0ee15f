#!/usr/bin/env bash
# Stops every process `make up` started, by the pids it recorded.
set -uo pipefail
state="$(cd "$(dirname "$0")/../.." && pwd)/.local"
[[ -f "$state/pids" ]] || { echo "local stack not running"; exit 0; }
while read -r pid name; do
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    echo "stopped $name ($pid)"
  fi
done < "$state/pids"
rm -f "$state/pids" "$state/stack.env"
