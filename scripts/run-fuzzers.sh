#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a bounded time from its seed corpus (tests/fuzz/corpus/
# <target>), two at a time, and fails on the first crash, leak, timeout or out-of-memory, printing the input
# that caused it. The corpus is replayed first, so every regression input in it is checked on each run.
#   scripts/run-fuzzers.sh [BUILD_DIR=build/fuzz] [SECONDS_EACH=60]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/fuzz}
seconds=${2:-60}
targets=(fuzz_safetensors fuzz_torch_bin fuzz_image fuzz_tokenizers fuzz_tokenizer_files fuzz_config fuzz_diffusers_config)
work=$(mktemp -d /tmp/mmx-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
export MMX_FUZZ_DATA="$PWD/tests/data" MMX_LOG=error
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"

run_one() {
  local target=$1
  mkdir -p "$work/$target/new" "$work/$target/artifacts"
  # New inputs go to a scratch folder (the first); the committed seeds are read only.
  if "$build/tests/fuzz/$target" "$work/$target/new" "tests/fuzz/corpus/$target" \
       -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$work/$target/artifacts/" > "$work/$target/log" 2>&1; then
    echo "$target: $(grep -E '^stat::number_of_executed_units' "$work/$target/log" | awk '{print $2}') runs in ${seconds} s, no failure"
  else
    echo "$target: FAILED; the end of its log:"
    tail -40 "$work/$target/log"
    for f in "$work/$target/artifacts"/*; do
      [ -e "$f" ] || continue
      mkdir -p fuzz-failures
      cp "$f" "fuzz-failures/$target-$(basename "$f")"
      echo "input kept as fuzz-failures/$target-$(basename "$f"); after the fix, add it to tests/fuzz/corpus/$target/ as a regression input"
    done
    return 1
  fi
}
export -f run_one
export build seconds work
printf '%s\n' "${targets[@]}" | xargs -P "$(nproc)" -I{} bash -c 'run_one {}'
