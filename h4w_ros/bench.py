"""python -m h4w_ros.bench: the node's own costs, per stage (stages), end to end over DDS (node), or over time (soak).

--mode stages (the default): the node's per-frame overhead with the network excluded, in
  milliseconds, one thing at a time on one thread. Stages: image message -> numpy, posing and
  placement (SMPL-X), WholeBodyMeshArray building (with hand states), its serialisation, REP 155
  TF building, marker building (the default coarse mesh, serialized from numpy), and publishing
  all of them on real publishers. The network runs once beforehand (stand-in assets unless real
  ones are given); its outputs are reused so only the node's work is timed. With
  --beside-python-thread it runs beside a thread that runs Python all the time, as the node's
  other stages do, and reports means: a call that gives up Python's GIL (a BLAS product, most torch
  calls, numpy over a large array) must then wait for it, up to a switch interval (5 ms); a
  median hides those waits.

--mode node: the real node executable (h4w_node) in its own process, fed 640x480 rgb8 images,
  camera_info and N person boxes per frame (h4w_ros/PersonBoxArray, box_source:=detections,
  tracking on) at --rate by a separate camera process over DDS (reliable QoS), its outputs
  received by this process. With --network-ms the node runs backend:=emulated (recorded outputs
  after a sleep of that many ms per network call, set through $H4W_EMULATED_NETWORK_MS: the
  node's own costs under a known network time); without, the real --backend. After the first
  output (plus --warmup-s) it measures for --seconds, per person count: output rate, latency
  (image stamp to receipt here), /tf and marker message rates, the node's /diagnostics (frame
  counts by fate, per-stage times and drops, processing and latency means: whatever it reports)
  and the CPU % of each process. Transport matters: reliable 640x480 frames over Fast DDS's
  default transports go as fragmented UDP and arrive in late bursts on a loaded machine; with
  --fastdds-profile config/fastdds_large_images.xml they go over shared memory.

--mode soak: --mode node's layout for --minutes, one person count (default: emulated 5 ms):
  the node's RSS over time, drops and latency per time window, and the RSS growth between the
  end of warm-up (the first 20 % of the frames or 1000 frames, whichever is fewer) and the end.
  Target (reported, not asserted): under 2 % over 10,000 frames after warm-up.

--mode qos: what reaches the node from a camera in another process under the shipped defaults
  (config/h4w.yaml: image_reliability auto; no Fast DDS profile unless --fastdds-profile or
  --node-fastdds-profile): for each --sizes entry and each camera QoS (reliable, best effort), the
  camera's rate, the images the node received per second and what it subscribed with (from its
  /diagnostics, after it is active), its output rate, and whether it logged what to change.

Prints a table and JSON (one record per person count, also to --json); asserts nothing.
Every process it starts is stopped at the end, and dies with this one (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from h4w_core.cli.common import non_negative_number
from h4w_core.data import SAMPLE_PHOTO

PHOTO = SAMPLE_PHOTO
STAGES = ("image_to_numpy", "postprocess", "mesh_message", "serialize", "tf_build", "markers_build", "publish", "total")
MODES = ("stages", "node", "soak", "qos")
QOS_SIZES = ("640x480", "1280x720")
CAMERA_QOS = ("reliable", "best_effort")

# --mode node / soak
WIDTH, HEIGHT = 640, 480
FRAME_ID = "camera_optical_frame"
CAMERA_NS = "/h4w_bench/camera"
IMAGE_TOPIC = f"{CAMERA_NS}/image_raw"
INFO_TOPIC = f"{CAMERA_NS}/camera_info"
DETECTIONS_TOPIC = f"{CAMERA_NS}/detections"
NETWORK_MS_ENV = "H4W_EMULATED_NETWORK_MS"  # = h4w_core.backends.emulated.NETWORK_MS_ENV (not imported: torch-free here)
SOAK_NETWORK_MS = 5.0
WARMUP_FRACTION, WARMUP_FRAMES_MAX = 0.2, 1000
RSS_TARGET_PCT, RSS_TARGET_FRAMES = 2.0, 10_000
LEVEL_KEYS = ("frames_in_flight",)  # /diagnostics integers that are levels, not counters

# Runs a command with PR_SET_PDEATHSIG = SIGTERM (it gets SIGTERM when this process dies, even by
# SIGKILL), then exec()s it: same pid, so /proc/<pid> is the command itself.
_EXEC_WITH_PDEATHSIG = (
    "import os, signal, sys\n"
    "try:\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)\n"
    "except Exception:\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class BenchError(RuntimeError):
    """A run that could not be measured (a process died, no output); the message says why."""


# ===================================================================================== stages
def bench(persons: int, repeats: int, estimator, node, width: int = 640, height: int = 480,
          summary=statistics.median) -> dict:
    import cv2
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header
    from visualization_msgs.msg import MarkerArray

    from h4w_core.inference.camera import Intrinsics
    from h4w_core.inference.results import TrackInfo
    from h4w_ros import messages, rep155
    from h4w_ros.frames import person_key
    from h4w_ros.hand_messages import person_hand_states, set_hand_fields
    from h4w_ros.image_conversion import image_to_numpy, numpy_to_image
    from h4w_ros.markers import display_faces
    from h4w_ros.msg import WholeBodyMeshArray
    from h4w_ros.raw_points import RawPointsEncoder
    from h4w_ros.tf_compat import make_transform_broadcaster

    photo = cv2.resize(cv2.imread(str(_photo())), (height, height))
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, (width - height) // 2 : (width + height) // 2] = photo
    header = Header(frame_id="camera_optical_frame")
    image_msg = numpy_to_image(frame, "bgr8", header)
    boxes = [[(width - height) // 2 + 20 + 10 * i, 10, 300, 460] for i in range(persons)]
    intrinsics = Intrinsics(600.0, 600.0, width / 2, height / 2)
    crops, kept = estimator.crops(frame, boxes, "bgr")
    people = estimator.estimate(crops, [TrackInfo(input_box=boxes[i], track_id=i + 1) for i in kept])
    parents = estimator.skeleton_parents
    display = display_faces(estimator, "coarse")  # the node's default marker_mesh
    encoder = RawPointsEncoder()
    mesh_pub = node.create_publisher(WholeBodyMeshArray, "/h4w_bench/wholebody", 10)
    marker_pub = node.create_publisher(MarkerArray, "/h4w_bench/markers", 10)
    tf = make_transform_broadcaster(node)
    samples = defaultdict(list)
    for _ in range(repeats + 1):  # the first round warms up
        t = {}
        start = time.perf_counter()
        image, order = image_to_numpy(image_msg, copy=False)  # as the node reads it
        t["image_to_numpy"] = time.perf_counter()
        results = estimator.pose(people, intrinsics)
        t["postprocess"] = time.perf_counter()
        array = messages.array_message(header, [set_hand_fields(messages.person_message(r), person_hand_states(r), r.track_id)
                                                for r in results])
        t["mesh_message"] = time.perf_counter()
        serialize_message(array)
        t["serialize"] = time.perf_counter()
        transforms = rep155.people_transforms(results, header)
        t["tf_build"] = time.perf_counter()
        parts = [p for i, r in enumerate(results) for p in messages.person_marker_points(r, header, person_key(r.track_id, i), display, parents, i, 1.0)]
        markers = encoder.encode(messages.marker_array([m for m, _ in parts]), [(m, "points", p) for m, p in parts])
        t["markers_build"] = time.perf_counter()
        mesh_pub.publish(array)
        tf.sendTransform(transforms)
        marker_pub.publish(markers)
        t["publish"] = time.perf_counter()
        previous = start
        for stage in STAGES[:-1]:
            samples[stage].append((t[stage] - previous) * 1000.0)
            previous = t[stage]
        samples["total"].append((previous - start) * 1000.0)
    return {"persons": persons, "image": f"{width}x{height} bgr8",
            **{f"{s}_ms": round(summary(samples[s][1:]), 2) for s in STAGES}}


@contextlib.contextmanager
def python_running_beside():
    """A thread that runs Python bytecode until the block ends: it holds the GIL whenever it can."""
    import threading

    done = threading.Event()

    def spin() -> None:
        count = 0
        while not done.is_set():
            for _ in range(1000):
                count += 1

    thread = threading.Thread(target=spin, name="h4w_bench_python", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _photo() -> Path:
    return Path(PHOTO)


def run_stages(args) -> int:
    import rclpy

    from h4w_core.inference.estimator import WholeBodyEstimator
    from h4w_core.model.assets import resolve_assets
    from h4w_core.tools.report import emit, format_table

    persons = args.persons or [1, 4]
    assets = resolve_assets(args.checkpoint, args.smplx_dir)
    estimator = WholeBodyEstimator(assets.checkpoint, assets.smplx_dir)
    rclpy.init()
    node = rclpy.create_node("h4w_bench")
    gc.freeze()  # as the node does after loading: long-lived objects leave the collector's scans
    try:
        beside = python_running_beside() if args.beside_python_thread else contextlib.nullcontext()
        with beside:
            summary = statistics.fmean if args.beside_python_thread else statistics.median
            records = [bench(n, args.repeats, estimator, node, summary=summary) for n in persons]
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    for record in records:
        record["beside_python_thread"] = bool(args.beside_python_thread)
    rows = [[str(r["persons"])] + [f"{r[s + '_ms']:.2f}" for s in STAGES] for r in records]
    what = ("mean ms per frame beside a thread running Python" if args.beside_python_thread else "median ms per frame")
    emit(format_table(["persons", *STAGES], rows, f"({what}, network excluded)"), records, args.json)
    return 0


# ============================================================================ processes, /proc
try:  # optional: the same numbers as /proc, when installed
    import psutil
except ImportError:  # pragma: no cover - depends on the install
    psutil = None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (s), None when it is gone."""
    try:
        if psutil is not None:
            t = psutil.Process(pid).cpu_times()
            return float(t.user + t.system)
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()  # after 'pid (comm) ': field 3 (state) onwards
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except Exception:
        return None


def rss_kb(pid: int) -> int | None:
    """Resident set size (VmRSS) of a process in kB, None when it is gone."""
    try:
        if psutil is not None:
            return int(psutil.Process(pid).memory_info().rss // 1024)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except Exception:
        return None
    return None


class Child:
    """A subprocess with its output in a log file; dies with this process; stop() ends it."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.command = command
        self.proc = subprocess.Popen([sys.executable, "-c", _EXEC_WITH_PDEATHSIG, str(os.getpid()), *command],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.returncode: int | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, chars: int = 3000) -> str:
        return self.text()[-chars:]

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGINT, then SIGKILL after `timeout` s; the exit code."""
        if self.alive():
            try:
                self.proc.send_signal(signal.SIGINT)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        if not self.log.closed:
            self.log.close()
        return self.returncode


def node_command(args, persons: int, backend: str, image_reliability: str | None = "reliable") -> list[str]:
    """h4w_node as launch runs it (the console script next to this Python), with the bench's parameters
    (image_reliability None: the shipped default)."""
    executable = Path(sys.executable).with_name("h4w_node")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "h4w_ros.node"]
    params = {
        "allow_standin": "true", "backend": backend, "device": args.device, "precision": args.precision,
        "box_source": "detections", "detections_format": "h4w", "tracking": "true", "max_persons": str(persons),
        "publish_overlay": "false",
    }
    for item in args.node_param or []:
        name, _, value = item.partition(":=")
        params[name] = value
    if image_reliability is not None:
        # 640x480 rgb8 is larger than Fast DDS's default shared-memory segment, which best effort cannot use
        params["image_reliability"] = image_reliability
    if args.checkpoint:
        params["checkpoint"] = str(Path(args.checkpoint).expanduser().resolve())
    if args.smplx_dir:
        params["smplx_dir"] = str(Path(args.smplx_dir).expanduser().resolve())
    command += ["--ros-args"]
    for name, value in params.items():
        command += ["-p", f"{name}:={value}"]
    command += ["-r", f"image:={IMAGE_TOPIC}", "-r", f"camera_info:={INFO_TOPIC}", "-r", f"detections:={DETECTIONS_TOPIC}"]
    if args.namespace:
        command += ["-r", f"__ns:={args.namespace}"]
    return command


def camera_command(persons: int, rate: float, size: str = f"{WIDTH}x{HEIGHT}", reliability: str = "reliable") -> list[str]:
    return [sys.executable, "-m", "h4w_ros.bench", "--role", "camera", "--persons", str(persons), "--rate", repr(rate),
            "--sizes", size, "--camera-qos", reliability]


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must be WIDTHxHEIGHT, got {text!r}") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"image size must be between 16x16 and 8192x8192, got {text!r}")
    return width, height


# ===================================================================================== camera
def person_boxes(persons: int, width: int = WIDTH, height: int = HEIGHT) -> list[tuple[float, float, float, float]]:
    """One box (x, y, w, h) per column of the frame, persons columns side by side."""
    column = width / persons
    return [(i * column + 2.0, 2.0, column - 4.0, height - 4.0) for i in range(persons)]


def camera_frame(persons: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """An RGB frame with the sample photo once per person column (what the boxes enclose)."""
    import cv2

    frame = np.zeros((height, width, 3), np.uint8)
    photo = cv2.imread(str(_photo()), cv2.IMREAD_COLOR)
    for x, y, w, h in person_boxes(persons, width, height):
        side = int(min(w, h))
        tile = cv2.resize(photo, (side, side))[:, :, ::-1]
        x0, y0 = int(x + (w - side) / 2), int(y + (h - side) / 2)
        frame[y0 : y0 + side, x0 : x0 + side] = tile
    return frame


def run_camera(args) -> int:
    """--role camera: image + camera_info + detections with one stamp at --rate until SIGINT/SIGTERM."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header

    from h4w_core.inference.camera import Intrinsics
    from h4w_ros.image_conversion import numpy_to_image
    from h4w_ros.msg import PersonBox, PersonBoxArray
    from h4w_ros.qos import image_qos

    stop = {"set": False}

    def on_signal(*_):
        stop["set"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    persons = (args.persons or [1])[0]
    width, height = parse_size((args.sizes or [f"{WIDTH}x{HEIGHT}"])[0])
    parent = os.getppid()
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("h4w_bench_camera")
    qos = image_qos(args.camera_qos, depth=2)
    image_pub = node.create_publisher(sensor_image_type(), IMAGE_TOPIC, qos)
    info_pub = node.create_publisher(CameraInfo, INFO_TOPIC, qos)
    det_pub = node.create_publisher(PersonBoxArray, DETECTIONS_TOPIC, 10)
    image = numpy_to_image(camera_frame(persons, width, height), "rgb8", Header(frame_id=FRAME_ID))
    k = Intrinsics.default_for(width, height)
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.k = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
    info.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5
    boxes = PersonBoxArray(boxes=[PersonBox(x=float(x), y=float(y), width=float(w), height=float(h), score=1.0)
                                  for x, y, w, h in person_boxes(persons, width, height)])
    period = 1.0 / args.rate
    frames, late = 0, 0
    start = next_t = time.monotonic()
    try:
        while not stop["set"] and os.getppid() == parent:
            now = time.monotonic()
            if now < next_t:
                time.sleep(min(next_t - now, 0.1))
                continue
            header = Header(frame_id=FRAME_ID, stamp=node.get_clock().now().to_msg())
            info.header = boxes.header = image.header = header
            info_pub.publish(info)
            det_pub.publish(boxes)
            image_pub.publish(image)
            frames += 1
            next_t += period
            if now - next_t > period:  # fell behind by more than a frame: skip, never burst
                late += 1
                next_t = now + period
    finally:
        elapsed = time.monotonic() - start
        node.destroy_node()
        rclpy.try_shutdown()
        print(json.dumps({"camera_frames": frames, "camera_seconds": round(elapsed, 3), "camera_late": late}), flush=True)
    return 0


def sensor_image_type():
    from sensor_msgs.msg import Image

    return Image


# =================================================================================== receiver
def cdr_stamp_and_count(data: bytes) -> tuple[int, int]:
    """(stamp in ns, length of the first sequence) of a serialised message that starts with a
    std_msgs/Header followed by a sequence (WholeBodyMeshArray: header, people[]), read straight
    from the CDR bytes so that receiving 10475-vertex meshes costs this process nothing."""
    order = "<" if data[1] & 1 else ">"  # encapsulation 0x0001 CDR_LE, 0x0000 CDR_BE
    sec, nanosec, length = struct.unpack_from(order + "iII", data, 4)
    offset = 16 + length  # the frame_id string (with its NUL)
    offset += (-(offset - 4)) % 4  # alignment counts from the end of the encapsulation header
    (count,) = struct.unpack_from(order + "I", data, offset)
    return sec * 1_000_000_000 + nanosec, count


def diagnostics_values(msg) -> dict | None:
    """The h4w_node status of a DiagnosticArray as a dict (None when it holds none)."""
    for status in msg.status:
        if "whole-body estimation" in status.name or status.name.startswith("h4w_node"):
            values = {kv.key: kv.value for kv in status.values}
            level = status.level
            values["level"] = int.from_bytes(level, "little") if isinstance(level, bytes) else int(level)
            values["message"] = status.message
            return values
    return None


def _number(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        pass
    try:
        value = float(text)
        return value if math.isfinite(value) else None
    except (TypeError, ValueError):
        return text


class Receiver:
    """This process's subscriptions to the node's outputs (meshes, /tf, markers, /diagnostics)."""

    def __init__(self, namespace: str = ""):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from visualization_msgs.msg import MarkerArray

        from h4w_ros.msg import WholeBodyMeshArray
        from h4w_ros.node import MARKERS_TOPIC, OUTPUT_TOPIC

        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:  # pragma: no cover - depends on the install
            TFMessage = None
        prefix = namespace.rstrip("/") + "/" if namespace else "/"
        self.node = rclpy.create_node("h4w_bench_receiver")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.output_topic = prefix + OUTPUT_TOPIC
        self.node.create_subscription(WholeBodyMeshArray, self.output_topic, self._on_mesh, 10, raw=True)
        self.node.create_subscription(MarkerArray, prefix + MARKERS_TOPIC, self._on_markers, 10, raw=True)
        if TFMessage is not None:
            self.node.create_subscription(TFMessage, "/tf", self._on_tf, 100, raw=True)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.diagnostics: list[tuple[float, dict]] = []  # (monotonic receipt, values)
        self.since_ns = 0  # messages stamped earlier are ignored (a previous node's, still queued)
        self.reset()

    def start_session(self) -> None:
        """Forget everything received so far, and ignore whatever is stamped before now."""
        self.since_ns = time.time_ns()
        self.diagnostics.clear()
        self.reset()

    def reset(self) -> None:
        self.outputs: list[tuple[float, float, int]] = []  # (monotonic receipt, latency ms, persons)
        self.tf: list[float] = []
        self.markers: list[float] = []

    def _on_mesh(self, data: bytes) -> None:
        now_ns, now = time.time_ns(), time.monotonic()
        try:
            stamp_ns, people = cdr_stamp_and_count(data)
        except struct.error:
            return
        if stamp_ns < self.since_ns:
            return
        self.outputs.append((now, (now_ns - stamp_ns) / 1e6, people))

    def _on_tf(self, data: bytes) -> None:
        self.tf.append(time.monotonic())

    def _on_markers(self, data: bytes) -> None:
        self.markers.append(time.monotonic())

    def _on_diagnostics(self, msg) -> None:
        values = diagnostics_values(msg)
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if values is not None and stamp_ns >= self.since_ns:
            self.diagnostics.append((time.monotonic(), values))

    def spin_for(self, seconds: float, check=None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=min(0.01, max(0.0, deadline - time.monotonic())))
            if check is not None:
                check()

    def spin_until(self, predicate, timeout: float, check=None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.02)
            if check is not None:
                check()
        return bool(predicate())

    def diagnostics_at(self, t: float, after: bool = False) -> dict | None:
        """The newest /diagnostics received at or before t (after=True: the first one after t)."""
        entry = self.diagnostics_entry(t, after)
        return entry[1] if entry else None

    def diagnostics_entry(self, t: float, after: bool = False) -> tuple[float, dict] | None:
        """(receipt time, values) of :meth:`diagnostics_at`."""
        if after:
            return next((e for e in self.diagnostics if e[0] > t), None)
        before = [e for e in self.diagnostics if e[0] <= t]
        return before[-1] if before else None

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.executor.shutdown()


@contextlib.contextmanager
def receiving(namespace: str = ""):
    """An rclpy context (no signal handlers: SIGTERM unwinds through this) and a Receiver on it,
    both shut down on the way out."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    try:
        receiver = Receiver(namespace)
        try:
            yield receiver
        finally:
            receiver.close()
    finally:
        rclpy.try_shutdown()


# ==================================================================================== sessions
class Session:
    """One node process and one camera process for one person count; both stopped on exit."""

    def __init__(self, args, persons: int, backend: str, network_ms: float | None, log_dir: Path,
                 node_command_: list[str] | None = None, camera_command_: list[str] | None = None, node_env: dict | None = None,
                 name: str = ""):
        env = dict(os.environ, **(node_env or {}))
        if network_ms is not None:
            env[NETWORK_MS_ENV] = repr(float(network_ms))
        else:
            env.pop(NETWORK_MS_ENV, None)
        self.children: list[Child] = []
        self.node = self.camera = None
        name = name or f"{persons}p"
        try:
            self.node = self._start(f"h4w_node_{name}", node_command_ or node_command(args, persons, backend), env, log_dir)
            self.camera = self._start(f"camera_{name}", camera_command_ or camera_command(persons, args.rate), dict(os.environ), log_dir)
        except BaseException:
            self.close()
            raise

    def _start(self, name, command, env, log_dir) -> Child:
        child = Child(name, command, env, log_dir)
        self.children.append(child)
        return child

    def check(self) -> None:
        for child in self.children:
            if not child.alive():
                raise BenchError(f"{child.name} exited with code {child.proc.returncode}; its log "
                                 f"({child.log_path}) ends:\n{child.tail()}")

    def close(self) -> None:
        for child in reversed(self.children):  # the camera first, then the node
            child.stop()

    def camera_report(self) -> dict:
        for line in reversed(self.camera.text().splitlines()) if self.camera else []:
            if line.startswith("{") and "camera_frames" in line:
                try:
                    return json.loads(line)
                except ValueError:
                    break
        return {}

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for_first_output(receiver: Receiver, session: Session, timeout: float) -> float:
    """Seconds until the node's first output (model load, discovery, warm-up inside the node)."""
    start = time.monotonic()
    if not receiver.spin_until(lambda: bool(receiver.outputs), timeout, check=session.check):
        raise BenchError(f"no output on {receiver.output_topic} within {timeout:.0f} s; the node's log "
                         f"({session.node.log_path}) ends:\n{session.node.tail()}")
    return time.monotonic() - start


def percentile(values, q) -> float | None:
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def latency_stats(latencies) -> dict:
    return {"latency_ms_p50": percentile(latencies, 50), "latency_ms_p95": percentile(latencies, 95),
            "latency_ms_mean": round(float(np.mean(latencies)), 2) if len(latencies) else None,
            "latency_ms_max": round(float(np.max(latencies)), 2) if len(latencies) else None}


def diagnostics_delta(first: dict | None, last: dict | None) -> dict:
    """The node's counters over a stretch (last - first), its levels and means as of `last`,
    and 'accounting_gap': received - processed - losses - change in flight (0 when they add up)."""
    if last is None:
        return {}
    first = first or {}
    out: dict = {}
    for key, text in last.items():
        value = _number(text)
        before = _number(first.get(key)) if key in first else 0
        if isinstance(value, int) and not isinstance(value, bool) and key not in LEVEL_KEYS and key != "level":
            out[key] = value - before if isinstance(before, int) else value
        else:
            out[key] = value
    from h4w_ros.diagnostics import LOSSES

    if "frames_received" in out and "frames_processed" in out:
        in_flight = _number(last.get("frames_in_flight", 0)) or 0
        in_flight_before = _number(first.get("frames_in_flight", 0)) or 0
        losses = sum(out.get(k, 0) for k in LOSSES if isinstance(out.get(k, 0), int))
        out["accounting_gap"] = out["frames_received"] - out["frames_processed"] - losses - (in_flight - in_flight_before)
    return out


def _cpu_pct(before: float | None, after: float | None, seconds: float) -> float | None:
    if before is None or after is None or seconds <= 0:
        return None
    return round((after - before) / seconds * 100.0, 1)


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _backend(args, soak: bool) -> tuple[str, float | None]:
    network_ms = args.network_ms
    if network_ms is None and soak and args.backend in (None, "emulated"):
        network_ms = SOAK_NETWORK_MS
    if network_ms is not None:
        if args.backend not in (None, "emulated"):
            raise BenchError(f"--network-ms runs the emulated backend; it cannot be combined with --backend {args.backend}")
        return "emulated", float(network_ms)
    if args.backend == "emulated":
        return "emulated", None  # the node's default: $H4W_EMULATED_NETWORK_MS or 5 ms
    return args.backend or "onnxruntime", None


def _base_record(args, mode: str, persons: int, backend: str, network_ms: float | None) -> dict:
    return {"mode": mode, "persons": persons, "backend": backend, "device": args.device, "precision": args.precision,
            "network_ms": network_ms, "image": f"{WIDTH}x{HEIGHT} rgb8", "rate_hz": args.rate, "cpu_count": os.cpu_count(),
            "image_qos": "reliable", "fastdds_profile": os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE") or None}


# ======================================================================================= node
def measure_node(args, receiver: Receiver, persons: int, backend: str, network_ms: float | None, log_dir: Path) -> dict:
    receiver.start_session()  # a previous node's outputs and counters must not count
    with Session(args, persons, backend, network_ms, log_dir) as session:
        startup_s = wait_for_first_output(receiver, session, args.startup_timeout)
        receiver.spin_for(args.warmup_s, check=session.check)
        receiver.reset()
        t0 = time.monotonic()
        cpu0 = {"node": cpu_seconds(session.node.pid), "camera": cpu_seconds(session.camera.pid), "bench": _self_cpu()}
        receiver.spin_for(args.seconds, check=session.check)
        t1 = time.monotonic()
        cpu1 = {"node": cpu_seconds(session.node.pid), "camera": cpu_seconds(session.camera.pid), "bench": _self_cpu()}
        rss = rss_kb(session.node.pid)
        window = t1 - t0
        # the counters from the last /diagnostics before the window to the first after it
        receiver.spin_until(lambda: receiver.diagnostics_at(t1, after=True) is not None, 5.0, check=session.check)
        # none before the window yet (a busy machine): count from the first one inside it
        first = receiver.diagnostics_entry(t0) or receiver.diagnostics_entry(t0, after=True)
        last = receiver.diagnostics_entry(t1, after=True)
        diag0, diag1 = (first[1] if first else None), (last[1] if last else None)
        diag_window = round(last[0] - first[0], 2) if first and last and first is not last else None
    camera = session.camera_report()
    outputs = [o for o in receiver.outputs if t0 <= o[0] <= t1]
    latencies = [o[1] for o in outputs]
    record = _base_record(args, "node", persons, backend, network_ms)
    record.update({
        "seconds": round(window, 2), "startup_s": round(startup_s, 1),
        "outputs": len(outputs), "output_hz": round(len(outputs) / window, 2),
        "persons_per_output": round(float(np.mean([o[2] for o in outputs])), 2) if outputs else None,
        **latency_stats(latencies),
        "tf_msgs_hz": round(sum(t0 <= t <= t1 for t in receiver.tf) / window, 2),
        "marker_msgs_hz": round(sum(t0 <= t <= t1 for t in receiver.markers) / window, 2),
        "node_cpu_pct": _cpu_pct(cpu0["node"], cpu1["node"], window),
        "camera_cpu_pct": _cpu_pct(cpu0["camera"], cpu1["camera"], window),
        "bench_cpu_pct": _cpu_pct(cpu0["bench"], cpu1["bench"], window),
        "node_rss_mb": round(rss / 1024, 1) if rss else None,
        "camera": camera,
        "diagnostics": diagnostics_delta(diag0, diag1), "diagnostics_window_s": diag_window,
        "node_exit_code": session.node.returncode, "pids": {"node": session.node.pid, "camera": session.camera.pid},
        "node_log": str(session.node.log_path),
    })
    return record


NODE_COLUMNS = (("persons", "persons", "{}"), ("out Hz", "output_hz", "{:.1f}"), ("lat p50", "latency_ms_p50", "{:.1f}"),
                ("lat p95", "latency_ms_p95", "{:.1f}"), ("img age ms", "diagnostics.image_age_ms_p50", "{:.1f}"),
                ("node proc ms", "diagnostics.processing_ms_mean", "{:.1f}"),
                ("recv", "diagnostics.frames_received", "{}"), ("processed", "diagnostics.frames_processed", "{}"),
                ("sync drop", "diagnostics.sync_dropped", "{}"), ("newest drop", "diagnostics.newest_wins_dropped", "{}"),
                ("node CPU %", "node_cpu_pct", "{:.0f}"), ("camera CPU %", "camera_cpu_pct", "{:.0f}"),
                ("tf Hz", "tf_msgs_hz", "{:.1f}"), ("RSS MB", "node_rss_mb", "{:.0f}"))


def _cell(record: dict, key: str, fmt: str) -> str:
    value = record
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    return fmt.format(value)


def stage_keys(records: list[dict]) -> list[str]:
    """The node's per-stage time keys in /diagnostics (stage_<name>_ms), in reverse order of appearance."""
    keys: list[str] = []
    for r in records:
        for key in (r.get("diagnostics") or {}):
            if key.startswith("stage_") and key.endswith("_ms") and key not in keys:
                keys.append(key)
    return keys[::-1]


def print_diagnostics(record: dict) -> None:
    diag = record.get("diagnostics") or {}
    if not diag:
        print(f"persons={record['persons']}: no /diagnostics from the node received")
        return
    text = ", ".join(f"{k}={v}" for k, v in diag.items())
    print(f"persons={record['persons']} /diagnostics over the window (counters as differences): {text}")


def run_node(args) -> int:

    from h4w_core.tools.report import emit, format_table

    backend, network_ms = _backend(args, soak=False)
    persons = args.persons or [1, 4]
    log_dir = _log_dir(args)
    with receiving(args.namespace) as receiver:
        records = []
        for n in persons:
            print(f"[bench] node: {n} person(s), backend {backend}"
                  f"{f' ({network_ms:g} ms)' if network_ms is not None else ''}, {args.rate:g} Hz, {args.seconds:g} s ...",
                  file=sys.stderr, flush=True)
            records.append(measure_node(args, receiver, n, backend, network_ms, log_dir))
    for r in records:
        print_diagnostics(r)
    columns = list(NODE_COLUMNS)
    for key in stage_keys(records):  # per-stage times, when the node reports them
        columns.insert(5, (key.removeprefix("stage_").removesuffix("_ms").replace("_cpu", " cpu") + " ms",
                           f"diagnostics.{key}", "{:.1f}"))
    rows = [[_cell(r, key, fmt) for _, key, fmt in columns] for r in records]
    note = (f"(backend {backend}{f', network {network_ms:g} ms per call' if network_ms is not None else ''}; "
            f"{WIDTH}x{HEIGHT} rgb8 at {args.rate:g} Hz; latency = image stamp to receipt in another process, ms; "
            f"counts and stage ms from the node's /diagnostics over the window (a stage's cpu ms: its own "
            f"thread's CPU per item); Fast DDS profile: "
            f"{os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') or 'none'}; logs in {log_dir})")
    emit(format_table([c for c, _, _ in columns], rows, note), records, args.json)
    return 0


# ======================================================================================= soak
def warmup_index(total_frames: int) -> int:
    """Frames counted as warm-up: the first 20 %, at most 1000."""
    return min(math.ceil(WARMUP_FRACTION * total_frames), WARMUP_FRAMES_MAX)


def rss_growth(samples: list[tuple[float, int, int]]) -> dict:
    """RSS growth from the first sample at or after the warm-up frame count to the last sample."""
    if not samples:
        return {"rss_growth_pct": None, "frames_after_warmup": 0}
    total = samples[-1][1]
    warm = warmup_index(total)
    start = next((s for s in samples if s[1] >= warm), samples[-1])
    end = samples[-1]
    growth = (end[2] - start[2]) / start[2] * 100.0 if start[2] else None
    return {"warmup_frames": start[1], "rss_warm_mb": round(start[2] / 1024, 1), "rss_end_mb": round(end[2] / 1024, 1),
            "rss_first_mb": round(samples[0][2] / 1024, 1), "rss_max_mb": round(max(s[2] for s in samples) / 1024, 1),
            "rss_growth_pct": round(growth, 3) if growth is not None else None, "frames_after_warmup": end[1] - start[1]}


def measure_soak(args, receiver: Receiver, persons: int, backend: str, network_ms: float | None, log_dir: Path) -> dict:
    duration = args.minutes * 60.0
    window_s = args.window_s or max(2.0, min(60.0, duration / 10))
    sample_s = args.sample_s or max(0.5, min(5.0, duration / 40))
    receiver.start_session()
    with Session(args, persons, backend, network_ms, log_dir) as session:
        startup_s = wait_for_first_output(receiver, session, args.startup_timeout)
        receiver.reset()
        t0 = time.monotonic()
        cpu0 = cpu_seconds(session.node.pid)
        samples: list[tuple[float, int, int]] = []  # (s since start, outputs so far, RSS kB)
        next_sample = t0
        end = t0 + duration
        while True:
            now = time.monotonic()
            if now >= next_sample or now >= end:
                rss = rss_kb(session.node.pid)
                if rss is not None:
                    samples.append((round(now - t0, 2), len(receiver.outputs), rss))
                next_sample += sample_s
            if now >= end:
                break
            receiver.spin_for(min(0.2, max(0.0, min(next_sample, end) - now)), check=session.check)
        t1 = time.monotonic()
        cpu1 = cpu_seconds(session.node.pid)
        receiver.spin_until(lambda: receiver.diagnostics_at(t1, after=True) is not None, 5.0, check=session.check)
        final_diag = receiver.diagnostics_at(t1, after=True)
    windows = []
    count = max(1, round((t1 - t0) / window_s))  # the last window absorbs a remainder (no sliver windows)
    edges = [t0 + k * window_s for k in range(count)] + [t1]
    for a, b in zip(edges[:-1], edges[1:]):
        outs = [o for o in receiver.outputs if a <= o[0] < b or (b == t1 and o[0] == b)]
        d0 = receiver.diagnostics_at(a)
        d1 = receiver.diagnostics_at(b) if b < t1 else final_diag
        diag = diagnostics_delta(d0, d1)
        rss_in = [s[2] for s in samples if a - t0 <= s[0] <= b - t0 + 1e-6]
        windows.append({
            "t_s": [round(a - t0, 1), round(b - t0, 1)], "outputs": len(outs), "output_hz": round(len(outs) / (b - a), 2),
            **{k: v for k, v in latency_stats([o[1] for o in outs]).items() if k in ("latency_ms_p50", "latency_ms_p95")},
            **{k: diag.get(k) for k in ("frames_received", "frames_processed", "sync_dropped", "newest_wins_dropped",
                                        "bad_input", "not_ready", "failed", "accounting_gap") if k in diag},
            "rss_mb": round(rss_in[-1] / 1024, 1) if rss_in else None,
        })
    record = _base_record(args, "soak", persons, backend, network_ms)
    growth = rss_growth(samples)
    frames = len(receiver.outputs)
    met = None
    if growth["rss_growth_pct"] is not None and growth["frames_after_warmup"] >= RSS_TARGET_FRAMES:
        met = growth["rss_growth_pct"] < RSS_TARGET_PCT
    record.update({
        "minutes": args.minutes, "seconds": round(t1 - t0, 1), "startup_s": round(startup_s, 1), "frames": frames,
        "output_hz": round(frames / (t1 - t0), 2), **latency_stats([o[1] for o in receiver.outputs]),
        "node_cpu_pct": _cpu_pct(cpu0, cpu1, t1 - t0), **growth,
        "rss_target": f"< {RSS_TARGET_PCT:g} % over {RSS_TARGET_FRAMES} frames after warm-up",
        "rss_target_met": met, "window_s": window_s, "sample_s": sample_s, "windows": windows,
        "diagnostics": diagnostics_delta(None, final_diag), "camera": session.camera_report(),
        "rss_samples": [list(s) for s in samples], "node_exit_code": session.node.returncode,
        "pids": {"node": session.node.pid, "camera": session.camera.pid},
        "node_log": str(session.node.log_path),
    })
    return record


def run_soak(args) -> int:

    from h4w_core.tools.report import emit, format_table

    backend, network_ms = _backend(args, soak=True)
    persons = (args.persons or [1])[0]
    log_dir = _log_dir(args)
    with receiving(args.namespace) as receiver:
        print(f"[bench] soak: {persons} person(s), backend {backend}"
              f"{f' ({network_ms:g} ms)' if network_ms is not None else ''}, {args.rate:g} Hz, {args.minutes:g} min ...",
              file=sys.stderr, flush=True)
        record = measure_soak(args, receiver, persons, backend, network_ms, log_dir)
    columns = ("t [s]", "outputs", "out Hz", "lat p50", "lat p95", "recv", "sync drop", "newest drop", "RSS MB")
    rows = [[f"{w['t_s'][0]:g}-{w['t_s'][1]:g}", str(w["outputs"]), f"{w['output_hz']:.1f}",
             *(f"{w[k]:.1f}" if w.get(k) is not None else "-" for k in ("latency_ms_p50", "latency_ms_p95")),
             *(str(w.get(k, "-")) for k in ("frames_received", "sync_dropped", "newest_wins_dropped")),
             f"{w['rss_mb']:.1f}" if w.get("rss_mb") is not None else "-"] for w in record["windows"]]
    note = (f"(backend {backend}{f', network {network_ms:g} ms per call' if network_ms is not None else ''}; {persons} person(s); "
            f"counts from the node's /diagnostics per window; logs in {log_dir})")
    emit(format_table(columns, rows, note), [record], args.json)
    growth = record["rss_growth_pct"]
    verdict = {True: "met", False: "NOT met", None: f"not judged (needs {RSS_TARGET_FRAMES} frames after warm-up)"}[record["rss_target_met"]]
    print(f"rss_growth_pct={growth if growth is not None else 'nan'} over {record['frames_after_warmup']} frames "
          f"(after {record.get('warmup_frames', 0)} warm-up frames; RSS {record.get('rss_warm_mb')} -> {record.get('rss_end_mb')} MB; "
          f"target {record['rss_target']}: {verdict})")
    return 0


# ======================================================================================== qos
def measure_qos(args, receiver: Receiver, size: str, camera_qos: str, log_dir: Path) -> dict:
    """One camera (size, QoS) against the node under the shipped image QoS default."""
    backend, network_ms = "emulated", SOAK_NETWORK_MS
    receiver.start_session()
    node_env = {"FASTDDS_DEFAULT_PROFILES_FILE": args.node_fastdds_profile} if args.node_fastdds_profile else None
    with Session(args, 1, backend, network_ms, log_dir, node_command(args, 1, backend, image_reliability=None),
                 camera_command(1, args.rate, size, camera_qos), node_env, name=f"{size}_{camera_qos}") as session:
        active = receiver.spin_until(lambda: any(d.get("lifecycle_state") == "active" for _, d in receiver.diagnostics),
                                     args.startup_timeout, check=session.check)
        if not active:
            raise BenchError(f"the node did not become active within {args.startup_timeout:.0f} s; its log "
                             f"({session.node.log_path}) ends:\n{session.node.tail()}")
        t_active = time.monotonic()
        receiver.reset()
        receiver.spin_for(args.warmup_s, check=session.check)
        t0 = time.monotonic()
        receiver.spin_for(args.seconds, check=session.check)
        t1 = time.monotonic()
        receiver.spin_until(lambda: receiver.diagnostics_at(t1, after=True) is not None, 5.0, check=session.check)
        first = receiver.diagnostics_entry(t0) or receiver.diagnostics_entry(t0, after=True)
        last = receiver.diagnostics_entry(t1, after=True)
        diag = diagnostics_delta(first[1] if first else None, last[1] if last else None)
        window = (last[0] - first[0]) if first and last and first is not last else None
        log = session.node.text()
    camera = session.camera_report()
    hint = next((line.split("]: ", 1)[-1] for line in log.splitlines() if "no image arrived" in line or "never arrive" in line), None)
    outputs = [o for o in receiver.outputs if t0 <= o[0] <= t1]
    record = _base_record(args, "qos", 1, backend, network_ms)
    record.pop("image_qos")  # the node chose it: node_image_qos
    received = diag.get("frames_received")
    record.update({
        "image": f"{size} rgb8", "camera_qos": camera_qos, "node_image_qos": diag.get("image_qos"),
        "node_fastdds_profile": args.node_fastdds_profile,
        "camera_hz": round(camera["camera_frames"] / camera["camera_seconds"], 2) if camera.get("camera_seconds") else None,
        "received_hz": round(received / window, 2) if isinstance(received, int) and window else None,
        "output_hz": round(len(outputs) / (t1 - t0), 2), "seconds": round(t1 - t0, 1), "active_after_s": round(t_active - t0, 1),
        "diagnostics": diag, "hint": hint, "camera": camera, "node_log": str(session.node.log_path),
        "pids": {"node": session.node.pid, "camera": session.camera.pid},
    })
    return record


def run_qos(args) -> int:

    from h4w_core.tools.report import emit, format_table

    sizes = args.sizes or list(QOS_SIZES)
    for size in sizes:
        try:
            parse_size(size)
        except argparse.ArgumentTypeError as exc:
            raise BenchError(f"--sizes: {exc}") from None
    log_dir = _log_dir(args)
    with receiving(args.namespace) as receiver:
        records = []
        for size in sizes:
            for camera_qos in CAMERA_QOS:
                print(f"[bench] qos: camera {size} rgb8 {camera_qos} at {args.rate:g} Hz, {args.seconds:g} s ...", file=sys.stderr, flush=True)
                records.append(measure_qos(args, receiver, size, camera_qos, log_dir))
    columns = ("image", "camera QoS", "node QoS", "camera Hz", "received Hz", "processed", "sync drop", "output Hz", "node said")
    rows = [[r["image"], r["camera_qos"], r["node_image_qos"] or "-", _cell(r, "camera_hz", "{:.1f}"), _cell(r, "received_hz", "{:.1f}"),
             _cell(r, "diagnostics.frames_processed", "{}"), _cell(r, "diagnostics.sync_dropped", "{}"), _cell(r, "output_hz", "{:.1f}"),
             (r["hint"][:60] + "...") if r["hint"] else "-"] for r in records]
    profile = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
    note = (f"(node: shipped defaults, emulated backend {SOAK_NETWORK_MS:g} ms; Fast DDS profile: camera and node "
            f"{profile or 'none'}, node only {args.node_fastdds_profile or 'none'}; received = the node's frames_received "
            f"per second; logs in {log_dir})")
    emit(format_table(list(columns), rows, note), records, args.json)
    return 0


# ======================================================================================= main
def _log_dir(args) -> Path:
    if args.log_dir:
        path = Path(args.log_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix="h4w_bench_"))


def _positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def parser() -> argparse.ArgumentParser:
    from h4w_core.backends import BACKENDS

    p = argparse.ArgumentParser(prog="python -m h4w_ros.bench", description=__doc__.splitlines()[0],
                                epilog="\n".join(__doc__.splitlines()[1:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=MODES, default="stages", help="what to measure (default: stages)")
    p.add_argument("--role", choices=("bench", "camera"), default="bench", help=argparse.SUPPRESS)  # internal: the camera process
    p.add_argument("--persons", type=_positive(int), nargs="+", default=None,
                   help="person counts (stages, node: default 1 4; soak: one, default 1)")
    p.add_argument("--repeats", type=int, default=10, help="stages: rounds per person count")
    p.add_argument("--beside-python-thread", action="store_true",
                   help="stages: beside a thread running Python (GIL handoffs cost what they cost in the node); means")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--smplx-dir", default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the JSON records here")
    g = p.add_argument_group("node, soak and qos")
    g.add_argument("--network-ms", type=non_negative_number, default=None,
                   help="run backend:=emulated with this delay per network call (node: omitted = the real --backend; soak: default 5)")
    g.add_argument("--backend", choices=BACKENDS, default=None, help="the node's backend without --network-ms (node default: onnxruntime)")
    g.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    g.add_argument("--precision", default="fp32")
    g.add_argument("--rate", type=_positive(float), default=30.0, help="camera frames per second")
    g.add_argument("--seconds", type=_positive(float), default=15.0, help="node: measuring time per person count")
    g.add_argument("--minutes", type=_positive(float), default=10.0, help="soak: measuring time")
    g.add_argument("--warmup-s", type=non_negative_number, default=1.0, help="node: seconds after the first output before measuring")
    g.add_argument("--window-s", type=_positive(float), default=None, help="soak: window for drops and latency (default: a tenth of the run, 2-60 s)")
    g.add_argument("--sample-s", type=_positive(float), default=None, help="soak: RSS sampling period (default: 0.5-5 s)")
    g.add_argument("--startup-timeout", type=_positive(float), default=300.0, help="seconds to wait for the node's first output")
    g.add_argument("--namespace", default="", help="the node's namespace (outputs under it; /tf and /diagnostics stay global)")
    g.add_argument("--log-dir", default=None, help="where the node and camera logs go (default: a new temporary folder)")
    g.add_argument("--node-param", action="append", metavar="NAME:=VALUE", help="an extra node parameter (repeatable)")
    g.add_argument("--sizes", nargs="+", default=None, metavar="WxH", help=f"qos: camera image sizes (default: {' '.join(QOS_SIZES)})")
    g.add_argument("--camera-qos", choices=CAMERA_QOS, default="reliable", help=argparse.SUPPRESS)  # internal: the camera process
    g.add_argument("--node-fastdds-profile", default=None, metavar="XML",
                   help="qos: FASTDDS_DEFAULT_PROFILES_FILE for the node only (what a launch file can set)")
    g.add_argument("--fastdds-profile", default=None, metavar="XML",
                   help="FASTDDS_DEFAULT_PROFILES_FILE for all three processes, e.g. config/fastdds_large_images.xml "
                        "(images over shared memory instead of fragmented UDP; default: the environment's)")
    return p


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    if args.role == "camera":
        return run_camera(args)
    if args.beside_python_thread and args.mode != "stages":
        cli.error("--beside-python-thread applies to --mode stages only")
    if args.mode == "stages":
        return run_stages(args)

    def on_term(*_):
        raise SystemExit(143)  # unwind: every child is stopped on the way out

    signal.signal(signal.SIGTERM, on_term)
    if args.fastdds_profile:  # before any rclpy context here; the children inherit it
        profile = Path(args.fastdds_profile).expanduser().resolve()
        if not profile.is_file():
            print(f"python -m h4w_ros.bench: --fastdds-profile {args.fastdds_profile}: no such file", file=sys.stderr)
            return 2
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    if args.node_fastdds_profile:
        args.node_fastdds_profile = str(Path(args.node_fastdds_profile).expanduser().resolve())
    try:
        return {"node": run_node, "soak": run_soak, "qos": run_qos}[args.mode](args)
    except BenchError as exc:
        print(f"python -m h4w_ros.bench: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
