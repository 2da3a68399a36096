#!/usr/bin/env bash
# Run a command inside the project environment: the ROS 2 underlay chosen by `make setup`
# (/opt/ros/<distro> or the venv's ros-* wheels) and the .venv. Usage: scripts/env.sh CMD...
set -eo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$root/.venv/bin/python" ] || [ ! -f "$root/.venv/visuomotor-ros.env" ]; then
  echo "no complete .venv: run 'make setup' first" >&2
  exit 1
fi
ROS_SETUP=""
# shellcheck disable=SC1091
source "$root/.venv/visuomotor-ros.env"
if [ -n "$ROS_SETUP" ]; then
  set +u
  # shellcheck disable=SC1090
  source "$ROS_SETUP"
fi
export VIRTUAL_ENV="$root/.venv"
export PATH="$root/.venv/bin:$PATH"
export MUJOCO_GL=${MUJOCO_GL:-egl}
# Fast DDS with a shared-memory segment that holds camera frames (config/dds/*.xml explains).
export FASTDDS_DEFAULT_PROFILES_FILE=${FASTDDS_DEFAULT_PROFILES_FILE:-$root/config/dds/fastdds_large_images.xml}
exec "$@"
