#!/usr/bin/env bash
# Create (or update) the project's virtual environment .venv: Python dependencies, the project
# itself (editable), ROS 2 from PyPI wheels with the project's interfaces built into it, and the
# TensorRT-RTX builder wheel. Safe to re-run; a finished setup is skipped quickly.
#   usage: scripts/setup.sh            (H4W_VENV=path to use another folder)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${H4W_VENV:-$REPO/.venv}
STAMP="$VENV/.h4w-setup-done"
HASH=$(cat "$REPO/requirements.txt" "$REPO/requirements-trt.txt" "$REPO/setup.py" "$REPO/scripts/setup_ros.sh" \
       "$REPO"/msg/*.msg "$REPO/CMakeLists.txt" "$REPO/package.xml" | sha256sum | cut -c1-16)
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
bash "$REPO/scripts/setup_ros.sh" "$VENV"
echo "$HASH" > "$STAMP"
echo "[setup] done in $((SECONDS - T0)) s"
