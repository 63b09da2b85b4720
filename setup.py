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
    package_data={"h4w_core": ["data/*.jpg"]},
    # What h4w_core imports. torch is not pinned here: install the build for your machine first
    # (CPU or CUDA); requirements.txt pins the CPU wheel used by CI. The ROS side (rclpy, message
    # packages, tf2_ros, message_filters) comes from ROS itself: package.xml lists it.
    install_requires=[
        "torch>=2.1",
        "numpy>=1.24",
        "smplx>=0.1.28",
        "opencv-python-headless>=4.8,<5",
        "scipy>=1.10",
        "tqdm>=4.60",
    ],
    extras_require={
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17"],  # h4w-export, backend 'onnxruntime', detector 'onnx'
        "tensorrt": ["onnx>=1.15", "tensorrt>=8.5"],  # backend 'tensorrt', h4w-build-engine
        "test": ["pytest>=8", "pyyaml>=6", "ruff>=0.6"],
    },
    entry_points={
        "console_scripts": CORE_CONSOLE_SCRIPTS + ROS_CONSOLE_SCRIPTS,
    },
)
