#!/usr/bin/env bash
# Create (or update) the project's virtual environment .venv: Python dependencies, the project
# itself (editable), ROS 2 from PyPI wheels with the project's interfaces built into it, and the
# TensorRT-RTX builder wheel. Safe to re-run; a finished setup is skipped quickly.
# Where this workplace has upstream ROS wheels (../shared/ros/wheels: launch, ros2cli, tf2_ros,
# message_filters, ...), setup_ros.sh adds them for the tests (CI/test only; see docs/ROS_BUILD.md).
#   usage: scripts/setup.sh            (H4W_VENV=path to use another folder;
#                                       H4W_ROS_WHEELS_DIR=folder of those wheels, empty: none)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${H4W_VENV:-$REPO/.venv}
STAMP="$VENV/.h4w-setup-done"
WHEELS_DIR=${H4W_ROS_WHEELS_DIR-$REPO/../shared/ros/wheels}
WHEELS_LIST=""   # a changed wheel set re-runs the setup
if [[ -n "$WHEELS_DIR" && -d "$WHEELS_DIR" ]]; then
  WHEELS_LIST=$(cd "$WHEELS_DIR" && find . -maxdepth 1 -name '*.whl' -printf '%f %s\n' | LC_ALL=C sort)
fi
HASH=$( { cat "$REPO/requirements.txt" "$REPO/requirements-trt.txt" "$REPO/setup.py" "$REPO/scripts/setup.sh" \
          "$REPO/scripts/setup_ros.sh" "$REPO"/msg/*.msg "$REPO/CMakeLists.txt" "$REPO/package.xml"
          echo "wheels: $WHEELS_LIST"   # and which files share/h4w_ros links to (a new one re-runs the setup):
          cd "$REPO" && find launch config -type f ! -name '*.pyc' | LC_ALL=C sort; } | sha256sum | cut -c1-16)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]]; then
  echo "[setup] $VENV is up to date"
  exit 0
fi
T0=$SECONDS
echo "[setup] creating $VENV"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip 'setuptools<80' wheel
"$PY" -m pip install -q -r "$REPO/requirements.txt"
"$PY" -m pip install -q -r "$REPO/requirements-trt.txt" || echo "[setup] WARNING: TensorRT-RTX wheel not installed: engine-builder tests will skip"
"$PY" -m pip install -q --no-deps -e "$REPO"
# colcon from PyPI: the tests build this repository as a ROS package the way users do
"$PY" -m pip install -q colcon-core colcon-ros colcon-cmake colcon-python-setup-py colcon-library-path colcon-bash \
  || echo "[setup] WARNING: colcon not installed: the colcon build test will skip"
# After `pip install -e`: ROS wheels, interfaces, and the venv as an ament prefix holding h4w_ros
# (share/h4w_ros, lib/h4w_ros launchers) for `AMENT_PREFIX_PATH=$VENV ros2 run/launch h4w_ros ...`.
H4W_ROS_WHEELS_DIR="$WHEELS_DIR" bash "$REPO/scripts/setup_ros.sh" "$VENV"
echo "$HASH" > "$STAMP"
echo "[setup] done in $((SECONDS - T0)) s"
