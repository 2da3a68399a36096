#!/usr/bin/env bash
# Source ROS 2, the colcon install and the Python environment, then run the command.
set -e
source "/opt/ros/${ROS_DISTRO}/setup.bash"
source /opt/visuomotor/install/setup.bash
source /opt/visuomotor/.venv/bin/activate
exec "$@"
