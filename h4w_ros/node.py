"""h4w_node: camera image + camera_info in, whole-body SMPL-X meshes, TF and RViz markers out.

Topics (relative inputs, remap them):
  sub  image (sensor_msgs/Image), camera_info (sensor_msgs/CameraInfo), paired by stamp
  sub  detections (h4w_ros/PersonBoxArray) when box_source is 'detections'
  pub  /human/wholebody (h4w_ros/WholeBodyMeshArray), header copied from the image
  pub  /human/wholebody/faces (std_msgs/UInt32MultiArray, transient local, once): mesh triangles
  pub  /human/wholebody/markers (visualization_msgs/MarkerArray)
  pub  /human/wholebody/overlay (sensor_msgs/Image) when publish_overlay
  pub  /tf, /diagnostics
Inference runs on a worker thread that always takes the newest frame: a frame that arrives
while another waits replaces it (counted as dropped), so no backlog builds up.
"""
from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, MultiArrayDimension, UInt32MultiArray
from visualization_msgs.msg import MarkerArray

from h4w_core.inference.camera import Intrinsics, InvalidIntrinsicsError
from h4w_core.inference.results import PersonResult
from h4w_core.people.pipeline import PeoplePipeline
from h4w_ros import messages
from h4w_ros.detections import detection_boxes, detections_type
from h4w_ros.frames import person_key
from h4w_ros.image_conversion import ImageConversionError, image_to_numpy, numpy_to_image
from h4w_ros.msg import WholeBodyMeshArray
from h4w_ros.params import NodeConfig, declare_and_read, people_config
from h4w_ros.qos import image_qos
from h4w_ros.sync import ApproximateTimeSynchronizer, Subscriber
from h4w_ros.tf_compat import make_transform_broadcaster

OUTPUT_TOPIC = "/human/wholebody"
FACES_TOPIC = "/human/wholebody/faces"
MARKERS_TOPIC = "/human/wholebody/markers"
OVERLAY_TOPIC = "/human/wholebody/overlay"
NETWORK_ENCODINGS = ("rgb8", "bgr8", "mono8", "rgba8", "bgra8")


@dataclass
class Stats:
    """Counters behind /diagnostics (guarded by the node's lock)."""

    images_seen: deque = field(default_factory=lambda: deque(maxlen=200))
    published: deque = field(default_factory=lambda: deque(maxlen=200))
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=100))
    processing_ms: deque = field(default_factory=lambda: deque(maxlen=100))
    dropped: int = 0
    bad_input: int = 0
    last_pair_time: float = 0.0
    last_image_time: float = 0.0


def camera_intrinsics(info: CameraInfo) -> Intrinsics | None:
    """K of a CameraInfo, or None when it is unset (all zeros) or not finite."""
    k = np.asarray(info.k, dtype=np.float64)
    if k.shape != (9,):
        return None
    try:
        return Intrinsics(float(k[0]), float(k[4]), float(k[2]), float(k[5]))
    except InvalidIntrinsicsError:
        return None


def rate_hz(stamps: deque, window_s: float = 5.0) -> float:
    now = time.monotonic()
    recent = [t for t in stamps if now - t <= window_s]
    return len(recent) / window_s


class WholeBodyNode(Node):
    def __init__(self, **kwargs):
        super().__init__("h4w_node", **kwargs)
        self.running = True
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.worker: threading.Thread | None = None
        self.config: NodeConfig = declare_and_read(self)
        self.pending: dict | None = None  # newest synchronised frame waiting for the worker
        self.stats = Stats()
        self.model_error = ""
        self.standin = False
        self.estimator = None
        self.previous_keys: set[str] = set()
        self.error_times: dict[str, float] = {}

        self.mesh_pub = self.create_publisher(WholeBodyMeshArray, OUTPUT_TOPIC, 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.faces_pub = self.create_publisher(UInt32MultiArray, FACES_TOPIC, latched)
        self.marker_pub = self.create_publisher(MarkerArray, MARKERS_TOPIC, 10) if self.config.publish_markers else None
        self.overlay_pub = self.create_publisher(Image, OVERLAY_TOPIC, 1) if self.config.publish_overlay else None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.tf = make_transform_broadcaster(self) if self.config.publish_tf else None

        self._load_model()
        self.people = None
        try:
            self.people = PeoplePipeline(people_config(self.config))
        except Exception as exc:  # e.g. a missing detector model: keep running, say why
            self.model_error = self.model_error or f"person boxes unavailable: {type(exc).__name__}: {exc}"
            self.get_logger().error(f"{self.model_error}; frames will be dropped")

        qos = image_qos(self.config.image_reliability)
        self.image_sub = Subscriber(self, Image, "image", qos_profile=qos)
        self.info_sub = Subscriber(self, CameraInfo, "camera_info", qos_profile=qos)
        inputs = [self.image_sub, self.info_sub]
        self.input_names = ["image", "camera_info"]
        if self.config.box_source == "detections":
            inputs.append(Subscriber(self, detections_type(self.config.detections_format), "detections", qos_profile=10))
            self.input_names.append("detections")
        if self.config.use_depth:
            inputs.append(Subscriber(self, Image, "depth", qos_profile=qos))
            self.input_names.append("depth")
        self.sync = ApproximateTimeSynchronizer(inputs, self.config.sync_queue_size, self.config.sync_slop)
        self.sync.registerCallback(self._on_frame)
        self.image_sub.registerCallback(self._on_image_seen)

        gc.freeze()  # model and library objects are permanent: keep them out of collector scans
        self.worker = threading.Thread(target=self._work, name="h4w_inference", daemon=True)
        self.worker.start()
        self.create_timer(self.config.diagnostics_period, self._publish_diagnostics)
        self.create_timer(1.0, self._check_camera_info)
        self.get_logger().info(
            f"h4w_node ready: box_source={self.config.box_source} backend={self.config.backend}/{self.config.precision} "
            f"device={self.config.device} image QoS={self.config.image_reliability}"
        )

    # ---- model -------------------------------------------------------------------------
    def _load_model(self) -> None:
        """Load assets and network; on failure keep running, report why in logs and /diagnostics."""
        from h4w_core.inference.estimator import WholeBodyEstimator
        from h4w_core.model.assets import STANDIN_WARNING, resolve_assets

        try:
            assets = resolve_assets(self.config.checkpoint or None, self.config.smplx_dir or None,
                                    allow_standin=self.config.allow_standin)
            network = self._make_network(assets.checkpoint)
            self.estimator = WholeBodyEstimator(assets.checkpoint, assets.smplx_dir, device=self.config.device, network=network)
            self.standin = assets.standin
        except Exception as exc:  # any failure here must leave a running node that says why
            self.model_error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"model not loaded, frames will be dropped: {self.model_error}")
            return
        if self.standin:
            self.get_logger().warning(STANDIN_WARNING)
        self._publish_faces()

    def _make_network(self, checkpoint):
        """The configured backend's runner, or None for the estimator's own eager torch network."""
        if self.config.backend == "torch" and self.config.precision == "fp32":
            return None
        from h4w_core.backends import make_runner

        runner = make_runner(self.config.backend, checkpoint, device=self.config.device, precision=self.config.precision)
        runner.warmup()  # first-call allocations and kernel selection before the first frame
        return runner

    def _publish_faces(self) -> None:
        faces = self.estimator.faces.astype(np.uint32)
        msg = UInt32MultiArray()
        msg.layout.dim = [
            MultiArrayDimension(label="triangles", size=faces.shape[0], stride=faces.size),
            MultiArrayDimension(label="corners", size=3, stride=3),
        ]
        msg.data = faces.reshape(-1).tolist()
        self.faces_pub.publish(msg)

    # ---- input -------------------------------------------------------------------------
    def _on_image_seen(self, _msg: Image) -> None:
        with self.lock:
            now = time.monotonic()
            self.stats.images_seen.append(now)
            self.stats.last_image_time = now

    def _on_frame(self, *messages_in) -> None:
        frame = dict(zip(self.input_names, messages_in))
        with self.wake:
            self.stats.last_pair_time = time.monotonic()
            if self.pending is not None:
                self.stats.dropped += 1
            self.pending = frame
            self.wake.notify()

    def _check_camera_info(self) -> None:
        with self.lock:
            seen, paired = self.stats.last_image_time, self.stats.last_pair_time
        now = time.monotonic()
        if seen and now - seen < 2.0 and now - paired > self.config.camera_info_timeout:
            self.get_logger().warning(
                f"images arrive on {self.image_sub.sub.topic_name} but no matching camera_info on "
                f"{self.info_sub.sub.topic_name} (within sync_slop={self.config.sync_slop}s): nothing is processed",
                throttle_duration_sec=10.0,
            )

    def _error_once_per(self, text: str, period_s: float = 5.0) -> None:
        """Log an error, repeating the same text at most once per period (a camera with a wrong
        encoding would otherwise flood the log at frame rate; distinct problems all show)."""
        now = time.monotonic()
        if now - self.error_times.get(text, -1e9) >= period_s:
            self.error_times[text] = now
            self.get_logger().error(text)

    # ---- worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self.wake:
                while self.pending is None and self.running:
                    self.wake.wait(timeout=0.5)
                if not self.running:
                    return
                frame, self.pending = self.pending, None
            try:
                self._process(frame["image"], frame["camera_info"], frame.get("detections"), frame.get("depth"))
            except Exception as exc:  # the worker must survive any single bad frame
                with self.lock:
                    self.stats.bad_input += 1
                self._error_once_per(f"frame skipped: {type(exc).__name__}: {exc}")

    def _process(self, image_msg: Image, info: CameraInfo, detections, depth_msg: Image | None) -> None:
        if self.estimator is None or self.people is None:
            with self.lock:
                self.stats.dropped += 1
            return
        started = time.monotonic()
        try:
            if image_msg.encoding not in NETWORK_ENCODINGS:
                raise ImageConversionError(
                    f"encoding {image_msg.encoding!r} is not a camera colour/grey image; "
                    f"supported: {', '.join(NETWORK_ENCODINGS)}"
                )
            image, order = image_to_numpy(image_msg)
        except ImageConversionError as exc:
            with self.lock:
                self.stats.bad_input += 1
            self._error_once_per(f"image rejected: {exc}")
            return
        if order == "mono":
            image, order = np.repeat(image[:, :, None], 3, axis=2), "rgb"
        height, width = image.shape[:2]
        intrinsics = camera_intrinsics(info)
        if intrinsics is None:
            intrinsics = Intrinsics.default_for(width, height)
            self.get_logger().warning("camera_info has no valid K: assuming focal max(W, H)", throttle_duration_sec=10.0)
        stamp_s = image_msg.header.stamp.sec + image_msg.header.stamp.nanosec * 1e-9
        depth = self._registered_depth(depth_msg, (height, width)) if depth_msg is not None else None
        given = detection_boxes(detections) if self.config.box_source == "detections" else None
        frame = self.people.process(self.estimator, image, order, intrinsics, stamp_s, given=given, depth=depth)
        if frame.invalid_boxes:
            self.get_logger().warning(f"{frame.invalid_boxes} person box(es) could not be cropped (empty, outside the image "
                                      "or not finite) and were skipped", throttle_duration_sec=10.0)
        self._publish(image_msg.header, list(frame.people), image, order, intrinsics)
        done = time.monotonic()
        now_ros = self.get_clock().now().nanoseconds * 1e-9
        with self.lock:
            self.stats.published.append(done)
            self.stats.processing_ms.append((done - started) * 1000.0)
            self.stats.latencies_ms.append((now_ros - stamp_s) * 1000.0)

    def _registered_depth(self, depth_msg: Image, shape) -> np.ndarray | None:
        """The depth image as an array when it is registered to the colour image, else None (said once per 5 s)."""
        try:
            depth, _ = image_to_numpy(depth_msg)
        except ImageConversionError as exc:
            self._error_once_per(f"depth image rejected: {exc}")
            return None
        if depth.shape[:2] != tuple(shape) or depth.ndim != 2:
            self._error_once_per(f"depth image {depth.shape} is not registered to the {shape[1]}x{shape[0]} colour image")
            return None
        return depth

    # ---- output ------------------------------------------------------------------------
    def _publish(self, header: Header, results: list[PersonResult], image: np.ndarray, order: str, intrinsics: Intrinsics) -> None:
        keys = [person_key(r.track_id, i) for i, r in enumerate(results)]
        people = [messages.person_message(r, self.config.publish_mesh) for r in results]
        self.mesh_pub.publish(messages.array_message(header, people))
        if self.tf is not None and results:
            transforms = []
            for r, key in zip(results, keys):
                transforms += messages.person_transforms(r, header, key)
            self.tf.sendTransform(transforms)
        gone = sorted(self.previous_keys - set(keys))
        self.previous_keys = set(keys)
        if self.marker_pub is not None:
            markers = messages.delete_markers(header, gone)
            parents = self.estimator.skeleton_parents
            for i, (r, key) in enumerate(zip(results, keys)):
                colour = r.track_id if r.track_id >= 0 else i
                markers += messages.person_markers(r, header, key, self.estimator.faces, parents, colour,
                                                   self.config.marker_lifetime, self.config.marker_face_stride)
            if markers:
                self.marker_pub.publish(messages.marker_array(markers))
        if self.overlay_pub is not None:
            from h4w_core.cli.infer import render_overlay

            bgr = image[:, :, ::-1] if order == "rgb" else image
            canvas = render_overlay(bgr, results, self.estimator.faces, intrinsics, self.standin)
            self.overlay_pub.publish(numpy_to_image(np.ascontiguousarray(canvas), "bgr8", header))

    def _publish_diagnostics(self) -> None:
        with self.lock:
            s = self.stats
            values = {
                "input_rate_hz": f"{rate_hz(s.images_seen):.2f}",
                "output_rate_hz": f"{rate_hz(s.published):.2f}",
                "latency_ms_mean": f"{np.mean(s.latencies_ms):.1f}" if s.latencies_ms else "nan",
                "latency_ms_max": f"{np.max(s.latencies_ms):.1f}" if s.latencies_ms else "nan",
                "processing_ms_mean": f"{np.mean(s.processing_ms):.1f}" if s.processing_ms else "nan",
                "dropped_frames": str(s.dropped),
                "bad_input_frames": str(s.bad_input),
            }
        values.update({"backend": self.config.backend, "precision": self.config.precision, "device": self.config.device,
                       "box_source": self.config.box_source, "standin_assets": str(self.standin)})
        status = DiagnosticStatus(name="h4w_node: whole-body estimation", hardware_id=self.config.device)
        if self.model_error:
            status.level, status.message = DiagnosticStatus.ERROR, f"model not loaded: {self.model_error}"
        elif self.standin:
            status.level, status.message = DiagnosticStatus.WARN, "running on STAND-IN assets (not real estimates)"
        elif values["input_rate_hz"] == "0.00":
            status.level, status.message = DiagnosticStatus.WARN, "no images received"
        else:
            status.level, status.message = DiagnosticStatus.OK, "running"
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status]
        self.diag_pub.publish(msg)

    def destroy_node(self) -> None:
        with self.wake:
            self.running = False
            self.wake.notify_all()
        if self.worker is not None:
            self.worker.join(timeout=5.0)
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    # h4w_core reports through Python logging: give it the same stream and a ROS-like prefix
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")
    rclpy.init(args=argv if argv is not None else sys.argv)
    node = None
    try:
        node = WholeBodyNode()
        rclpy.spin(node)
    except ValueError as exc:  # bad parameters: say which and stop
        print(f"h4w_node: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    except ExternalShutdownException:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
