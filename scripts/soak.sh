#!/usr/bin/env bash
# `make soak`: the safety property tests under the hypothesis `soak` profile (100k generated
# cases per test), hypothesis's statistics written to bench/results/safety_soak.md. `make
# test` runs the same tests under the smaller, derandomised `ci` profile (200 cases).
# Two whole-envelope properties run in parallel, one per core: one limiter step from any
# admissible moving state with any target (~5 min), and random interleavings through the
# bridge state machine, which runs the limiter every tick (~10 min). The limiter's sequence
# properties (~70 ms per case) run under `ci` only. SOAK_TESTS overrides the list.
set -euo pipefail
cd "$(dirname "$0")/.."
export HYPOTHESIS_PROFILE=soak
tests=${SOAK_TESTS:-"test/unit/test_safety_limiter.py::test_one_step_from_any_admissible_moving_state_stays_within_the_limits test/unit/test_safety_bridge.py::test_random_interleavings_keep_every_setpoint_safe"}
out=bench/results/safety_soak.md
logs=$(mktemp -d)
start=$SECONDS
pids=()
i=0
for test in $tests; do
  python -m pytest -q -p no:cacheprovider --hypothesis-show-statistics "$test" \
    >"$logs/$i.log" 2>&1 &
  pids+=($!)
  i=$((i + 1))
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
{
  echo "# Safety property soak (hypothesis profile \`soak\`: 100k examples per test)"
  echo
  echo "$(date -u +%Y-%m-%d), $(uname -srm), $(nproc) CPUs; $((SECONDS - start)) s wall; exit status $status"
  echo
  echo '```'
  cat "$logs"/*.log | grep -E "^(test/|  - |=+ .*(passed|failed))|passing examples|failing examples|invalid examples|Stopped because|[0-9]+ (passed|failed)" || true
  echo '```'
} >"$out"
cat "$out"
exit "$status"
