#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and ASan/UBSan (in build-fuzz) and
# runs each for SECONDS (default 60) on a seed corpus made from the goldens.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     targets: safetensors config
#                                                scheduler png state (default: all)
#
# Environment: DDPM_GOLDEN_DIR (default ../shared/golden), FUZZ_BUILD_DIR
# (default build-fuzz).  The corpus grows across runs in
# $FUZZ_BUILD_DIR/fuzz-corpus; crashing inputs land in
# $FUZZ_BUILD_DIR/fuzz-crashes (exit status 1).  Reproduce one with
#   build-fuzz/tests/fuzz/fuzz_TARGET build-fuzz/fuzz-crashes/TARGET-crash-...
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors config scheduler png state)
build=${FUZZ_BUILD_DIR:-build-fuzz}
golden=${DDPM_GOLDEN_DIR:-$PWD/../shared/golden}

command -v clang >/dev/null || { echo "run.sh: clang is needed (apt-get install clang libclang-rt-NN-dev, NN its major version)" >&2; exit 2; }
if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debugoptimized -Dfuzz=enabled -Dplugin=disabled
fi
ninja -C "$build" tests/fuzz/make_seeds "${targets[@]/#/tests/fuzz/fuzz_}"

seeds=$build/fuzz-seeds
rm -rf "$seeds"
models=()
[ -d models/default ] && models+=(models/default)
"$build/tests/fuzz/make_seeds" "$golden" "$seeds" "${models[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$build/fuzz-crashes"
status=0
summary=()
for t in "${targets[@]}"; do
  corpus=$build/fuzz-corpus/$t
  mkdir -p "$corpus"
  log=$build/fuzz-$t.log
  echo "== fuzz_$t: $secs s"
  dict=()
  [ "$t" = png ] || dict=(-dict=tests/fuzz/json.dict)
  rc=0
  "$build/tests/fuzz/fuzz_$t" "${dict[@]}" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-crashes/$t-" "$corpus" "$seeds/$t" \
    >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2}')
  if [ $rc -ne 0 ]; then
    status=1
    tail -n 40 "$log"
  fi
  summary+=("fuzz_$t: ${execs:-?} executions, exit status $rc, corpus $(ls "$corpus" | wc -l) files")
done
printf '%s\n' "${summary[@]}"
ls "$build/fuzz-crashes"/* 2>/dev/null && echo "crashing inputs above" || echo "no crashing inputs"
exit $status
