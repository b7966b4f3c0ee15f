#!/usr/bin/env bash
# Fuzzes the HR event parser (`parse_event`) and the SQS record → DynamoDB history item path
# (`record_to_history`) with cargo-fuzz (libFuzzer), each for N executions, seeded with the
# sample events of events/hr/ and guided by hr-event.dict.
#
#   shared/fuzz/run.sh [executions per target]     (default 10000000; CI smoke: 20000)
#
# Installs cargo-fuzz (crates.io) when it is missing. Stable Rust: RUSTC_BOOTSTRAP=1 lets the
# stable compiler take the -Z flags cargo-fuzz passes. One core: libFuzzer runs in-process, one
# target after the other. A crash stops the script (exit non-zero) with the input saved under
# shared/fuzz/artifacts/<target>/, which
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin --fuzz-dir shared/fuzz -O -a <target> <file>
# minimises (same build flags as here, so nothing is rebuilt).
#
# Environment: FUZZ_SANITIZER (address|none, default address), FUZZ_TARGETS (default both),
# FUZZ_ARGS (extra libFuzzer flags, e.g. "-max_total_time=600").
set -euo pipefail

runs="${1:-10000000}"
case "$runs" in
  '' | *[!0-9]*)
    echo "usage: $0 [executions per target]" >&2
    exit 2
    ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
sanitizer="${FUZZ_SANITIZER:-address}"
targets="${FUZZ_TARGETS:-parse_event record_to_history}"
cargo_fuzz_version="0.13.2"

export RUSTC_BOOTSTRAP=1
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz $cargo_fuzz_version"
  SECONDS=0
  cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
  echo "==> cargo-fuzz installed in $SECONDS s"
fi

# Seeds: every sample event as a body; for record_to_history, each behind a 36-byte message id
# (first byte = its length, as the target reads its input).
seed_corpus() {
  local target="$1" dir="$here/corpus/$1" file name
  mkdir -p "$dir"
  for file in "$repo"/events/hr/*.json; do
    name="seed-$(basename "$file" .json)"
    case "$target" in
      record_to_history)
        { printf '\x24%s' "0b8f5e3a-5d5c-4a7e-9c1d-2f6a9b8e7d10"; cat "$file"; } >"$dir/$name"
        ;;
      *) cp "$file" "$dir/$name" ;;
    esac
  done
}

flags=(--fuzz-dir "$here" --release --debug-assertions --sanitizer "$sanitizer")

echo "==> building the fuzz targets (release, debug assertions, sanitizer: $sanitizer)"
SECONDS=0
cargo fuzz build "${flags[@]}"
echo "==> built in $SECONDS s"

for target in $targets; do
  seed_corpus "$target"
  echo "==> $target: $runs executions"
  SECONDS=0
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  cargo fuzz run "${flags[@]}" "$target" "$here/corpus/$target" -- \
    -runs="$runs" -max_len=20000 -dict="$here/hr-event.dict" -print_final_stats=1 ${FUZZ_ARGS:-}
  echo "==> $target: done in $SECONDS s, no crash"
done
