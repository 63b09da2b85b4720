"""pip install path (CI, development): the h4w_core and h4w_ros Python packages.

The ROS build (colcon on an apt ROS install) uses CMakeLists.txt instead; the interfaces
(h4w_ros.msg) are built by CMake in both paths (scripts/setup_ros.sh for pip venvs).
"""
from setuptools import find_packages, setup

# ROS node; colcon installs the same executable as lib/h4w_ros/h4w_node.
ROS_CONSOLE_SCRIPTS = [
    "h4w_node = h4w_ros.node:main",
    "h4w-replay = h4w_ros.replay:main",
]

# h4w_core command-line tools ("name = h4w_core.cli.<module>:main").
CORE_CONSOLE_SCRIPTS = [
    "h4w-infer = h4w_core.cli.infer:main",
    "h4w-build-engine = h4w_core.cli.build_engine:main",
    "h4w-export = h4w_core.cli.export:main",
    "h4w-bench = h4w_core.cli.bench:main",
]

setup(
    # Not "h4w_ros": the CMake build registers an egg-info of that name for the interfaces.
    name="h4w",
    version="0.1.0",
    description="Hand4Whole whole-body SMPL-X mesh estimation, with a ROS 2 node",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["h4w_core*", "h4w_ros*"]),
    install_requires=[
        "numpy",
    ],
    entry_points={
        "console_scripts": CORE_CONSOLE_SCRIPTS + ROS_CONSOLE_SCRIPTS,
    },
)
