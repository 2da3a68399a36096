#!/usr/bin/env bash
# `make soak`: the safety property tests (limiter and bridge state machine) under the
# hypothesis `soak` profile, 100k generated cases per property test, with hypothesis's
# statistics written to bench/results/safety_soak.md. `make test` runs the same tests under
# the smaller, derandomised `ci` profile.
set -euo pipefail
cd "$(dirname "$0")/.."
export HYPOTHESIS_PROFILE=soak
out=bench/results/safety_soak.md
log=$(mktemp)
start=$SECONDS
status=0
python -m pytest -q -p no:cacheprovider --hypothesis-show-statistics \
  test/unit/test_safety_limiter.py test/unit/test_safety_bridge.py >"$log" 2>&1 || status=$?
{
  echo "# Safety property soak (hypothesis profile \`soak\`: 100k examples per property test)"
  echo
  echo "$(date -u +%Y-%m-%d), $(uname -srm), $(nproc) CPUs; $((SECONDS - start)) s; pytest exit status $status"
  echo
  echo '```'
  grep -E "^(test/|  - |=+ .*(passed|failed))|passing examples|failing examples|invalid examples|Stopped because" "$log" || true
  echo '```'
} >"$out"
cat "$out"
exit "$status"
