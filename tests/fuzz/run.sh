#!/usr/bin/env bash
# Runs every libFuzzer target of a LIVECAST_FUZZ build for a bounded time.
#
#   tests/fuzz/run.sh <build-dir> <seconds-per-target> [target...]
#
# Each target (<build-dir>/tests/fuzz/fuzz_<name>, or only the names given)
# runs one after the other on a fresh copy of tests/fuzz/corpus/<name>, with
# tests/fuzz/<name>.dict when there is one, under limits on time, memory and
# time per input. Its output, the grown corpus and any crash file stay under
# <build-dir>/fuzz-runs/<name>/. Prints executions and coverage per target;
# exits non-zero when any target found something (or did not run), after
# printing the path of each crash file. Extra libFuzzer flags: LIVECAST_FUZZ_FLAGS.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 <build-dir> <seconds-per-target> [target...]" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
seconds=$2
shift 2
fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for binary in "$build_dir"/tests/fuzz/fuzz_*; do
    [[ -x $binary && -f $binary ]] && targets+=("${binary##*/fuzz_}")
  done
fi
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "no fuzz targets in $build_dir/tests/fuzz (configure with -DLIVECAST_FUZZ=ON and build)" >&2
  exit 2
fi

# The sanitizer runtimes map memory at fixed addresses and may abort at
# start-up when the kernel randomises mmap more than they expect.
no_aslr=()
if setarch "$(uname -m)" -R true 2>/dev/null; then
  no_aslr=(setarch "$(uname -m)" -R)
fi

failed=0
summary=()
for name in "${targets[@]}"; do
  binary="$build_dir/tests/fuzz/fuzz_$name"
  out="$build_dir/fuzz-runs/$name"
  rm -rf "$out"
  mkdir -p "$out/corpus" "$out/artifacts"
  if [[ -d "$fuzz_dir/corpus/$name" ]]; then
    cp -R "$fuzz_dir/corpus/$name/." "$out/corpus/"
  fi
  flags=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1
         -artifact_prefix="$out/artifacts/")
  if [[ -f "$fuzz_dir/$name.dict" ]]; then
    flags+=(-dict="$fuzz_dir/$name.dict")
  fi
  # shellcheck disable=SC2206 # split on purpose: several flags in one variable
  flags+=(${LIVECAST_FUZZ_FLAGS:-})

  echo "== fuzz_$name: ${seconds} s, corpus of $(find "$out/corpus" -type f | wc -l) inputs"
  rc=0
  if [[ ! -x $binary ]]; then
    echo "no $binary" >&2
    rc=127
  else
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
      "${no_aslr[@]}" "$binary" "${flags[@]}" "$out/corpus" >"$out/log" 2>&1 || rc=$?
  fi

  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log" 2>/dev/null | tail -n 1)
  coverage=$(grep -a -o 'cov: [0-9]*' "$out/log" 2>/dev/null | tail -n 1 | sed 's/cov: //')
  line="fuzz_$name: ${executions:-?} executions, cov ${coverage:-?}, corpus $(find "$out/corpus" -type f | wc -l)"
  crashes=$(find "$out/artifacts" -type f 2>/dev/null | sort)
  if [[ $rc -ne 0 || -n $crashes ]]; then
    failed=1
    line+=" FAILED (exit $rc)"
    echo "---- last lines of $out/log:"
    tail -n 40 "$out/log" 2>/dev/null || true
    for crash in $crashes; do
      echo "crash file: $crash"
      line+=" $crash"
    done
    echo "reproduce: $binary <crash file>"
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "== fuzzing summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
