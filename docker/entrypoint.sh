#!/usr/bin/env bash
# Source ROS 2, the colcon install and the Python environment, then run the command.
# `exec` replaces this shell with the command, so `docker stop`'s signal (SIGINT, see the
# Dockerfile's STOPSIGNAL) reaches `ros2 launch` or the node itself, not a shell that would
# not forward it.
set -e
source "/opt/ros/${ROS_DISTRO}/setup.bash"
source /opt/visuomotor/install/setup.bash
source /opt/visuomotor/.venv/bin/activate
exec "$@"
