#!/usr/bin/env bash
# `make test`: lint, type-check, then the test tiers, each in its own pytest process.
#   test/unit     pure core (no ROS)
#   test/ros      message conversion and nodes in-process with real rclpy over DDS
#   test/system   the whole deploy graph as processes (runner) on the twin, with faults
#   test/package  the colcon package: `colcon list`, install layout, ws/src checkout build
set -euo pipefail
cd "$(dirname "$0")/.."
# Keep test traffic on this machine and away from other ROS graphs on the network.
# Domain IDs 10-99: inside the range ROS recommends on Linux (0-101, clear of ephemeral ports).
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( $$ % 90 + 10 ))}
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export ROS_LOG_DIR=${ROS_LOG_DIR:-$(mktemp -d)}
export HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci}

start=$SECONDS
step() { printf '\n== %s\n' "$*"; }
step "ruff"
ruff check src test bench scripts setup.py
step "mypy (strict on the core)"
mypy
for tier in unit ros system package; do
  step "pytest test/$tier"
  python -m pytest -q "test/$tier"
done
printf '\nall checks passed in %ss\n' "$((SECONDS - start))"
