"""h4w_node: camera image + camera_info in, whole-body SMPL-X meshes, TF and RViz markers out.

A lifecycle node (``ros2 lifecycle``); with ``autostart`` (the default) it configures and
activates itself, so ``ros2 launch`` alone gives output.

  configure   parameters checked, asset paths resolved, people pipeline and publishers made
  activate    network and backend loaded and warmed up, subscriptions made, worker started
  deactivate  subscriptions dropped, worker stopped, network released (GPU memory freed)
  cleanup     publishers and pipeline dropped

Topics (relative: they resolve in the node's namespace; remap the inputs):
  sub  image (sensor_msgs/Image), camera_info (sensor_msgs/CameraInfo), paired by stamp
  sub  detections (h4w_ros/PersonBoxArray or vision_msgs/Detection2DArray) with box_source 'detections'
  sub  depth (sensor_msgs/Image, registered) with use_depth
  pub  human/wholebody (h4w_ros/WholeBodyMeshArray), header copied from the image
  pub  human/wholebody/faces (std_msgs/UInt32MultiArray, transient local, once): mesh triangles
  pub  human/wholebody/markers (visualization_msgs/MarkerArray), human/wholebody/overlay (debug image)
  pub  human/hands (h4w_ros/HandStateArray): pointing rays, apertures, curls, hand states
  pub  /tf: REP 155 frames per person (body_<id>, links, wrists, fingers, face_<id>, gaze_<id>),
       smplx_pelvis_<id>; /diagnostics
  pub  /humans/... (REP 155, hri_msgs) with hri and hri_msgs installed (h4w_ros/hri.py)
Work runs in four concurrent stages, one thread each (prepare: image, boxes, tracks; network:
estimate, smoothing; posing: SMPL-X, placement, depth; output: messages, TF), each taking the
newest item from the one before: an item that arrives while another waits replaces it
(counted), so no backlog builds up and the rate is set by the slowest stage. Markers are built
on their own thread at marker_rate.
"""
from __future__ import annotations

import functools
import gc
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, MultiArrayDimension, UInt32MultiArray
from visualization_msgs.msg import MarkerArray

from h4w_core.inference.camera import Intrinsics, InvalidIntrinsicsError
from h4w_core.inference.results import PersonResult
from h4w_core.io.render import render_overlay
from h4w_core.people.hands import HandState
from h4w_core.people.pipeline import PeoplePipeline
from h4w_ros import messages, rep155
from h4w_ros.detections import detection_boxes, detections_type
from h4w_ros.diagnostics import LOSSES, CauseLog, FrameCounters, rate_hz
from h4w_ros.hand_messages import hand_state_array, person_hand_states, set_hand_fields
from h4w_ros.hri import HriPublisher, hri_available
from h4w_ros.image_conversion import ImageConversionError, image_to_numpy, numpy_to_image
from h4w_ros.markers import MarkerThread, display_faces
from h4w_ros.msg import HandStateArray, WholeBodyMeshArray
from h4w_ros.params import (
    PEOPLE_PARAMETERS,
    NodeConfig,
    ParameterError,
    as_declared_types,
    check_update,
    declare_and_read,
    hand_config,
    people_config,
)
from h4w_ros.qos import image_qos
from h4w_ros.stages import Stage, limiting_stage
from h4w_ros.stamps import JUMP_AHEAD, JUMP_BACK, ZERO, StampGuard, sane_latency_ms
from h4w_ros.sync import (
    ApproximateTimeSynchronizer,
    SimpleFilter,
    Subscriber,
    discard_unpaired,
    queued,
    reset_synchronizer,
    stamp_nanoseconds,
)
from h4w_ros.tf_compat import make_transform_broadcaster

OUTPUT_TOPIC = "human/wholebody"
FACES_TOPIC = "human/wholebody/faces"
MARKERS_TOPIC = "human/wholebody/markers"
OVERLAY_TOPIC = "human/wholebody/overlay"
HANDS_TOPIC = "human/hands"
NETWORK_ENCODINGS = ("rgb8", "bgr8", "mono8", "rgba8", "bgra8")
NO_IMAGES_HINT_S = 5.0  # publishers present this long but no image: say what to change
TRANSPORT_LOSS_WARN = 0.2  # share of the camera's stamped images never received above which the node says why
WORKER_JOIN_S = 2.0  # a frame still in the network after this at shutdown is abandoned
WARM_POSING_MAX = 8  # person counts whose posing is traced at activation (larger ones on first use)


def camera_intrinsics(info: CameraInfo) -> Intrinsics | None:
    """K of a CameraInfo, or None when it is unset (all zeros), not finite or absurd."""
    k = np.asarray(info.k, dtype=np.float64)
    if k.shape != (9,):
        return None
    try:
        return Intrinsics(float(k[0]), float(k[4]), float(k[2]), float(k[5]))
    except InvalidIntrinsicsError:
        return None


class WholeBodyNode(LifecycleNode):
    def __init__(self, stop: threading.Event | None = None, **kwargs):
        super().__init__("h4w_node", **kwargs)
        self.stop = stop or threading.Event()
        self.config: NodeConfig = declare_and_read(self)
        self.log = CauseLog(self.get_logger())
        self.counts = FrameCounters()
        self.stamps = StampGuard(self.config.stamp_jump_threshold)
        self.running = False  # stages on; False: stop quietly
        self.stages: list[Stage] = []
        self.markers: MarkerThread | None = None
        self.reset_tracks = False  # set on a jump in time, applied by the prepare stage
        self.reset_filters = False  # ... and by the network stage
        self.rebuild_people = False  # set by a live parameter change, applied by the prepare stage
        self.display_faces: np.ndarray | None = None  # marker triangles (marker_mesh)
        self.state_error = ""  # why the last transition failed ('' = none)
        self.model_error = ""
        self.activated_at = 0.0
        self.lifecycle = "unconfigured"
        self.assets = None
        self.estimator = None
        self.people: PeoplePipeline | None = None
        self.standin = False
        self.latest: dict[str, object] = {}  # newest message per non-image input (zero-stamp pairing)
        self.inputs: list = []
        self.sync = None
        self.hri: HriPublisher | None = None
        self.hand_config = hand_config(self.config)
        self.last_paired_ns: int | None = None  # stamp of the newest image paired by the synchroniser
        self.image_input = None
        self.image_sub = None
        self.subscribed_reliability = ""
        self.publishers_seen_since = 0.0
        self.pubs: dict = {}
        self.tf = None
        self.check_timer = None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.diag_timer = self.create_timer(self.config.diagnostics_period, self._guarded(self._publish_diagnostics))
        if hasattr(self, "add_pre_set_parameters_callback"):  # rclpy >= Iron
            self.add_pre_set_parameters_callback(as_declared_types)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self) -> bool:
        """configure + activate (autostart); False, with the reason logged, when one fails."""
        for trigger in (self.trigger_configure, self.trigger_activate):
            if self.stop.is_set():
                return False
            trigger()
            if self.state_error:
                return False
        return True

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        from h4w_core.model.assets import resolve_assets

        try:
            self.assets = resolve_assets(self.config.checkpoint or None, self.config.smplx_dir or None,
                                         allow_standin=self.config.allow_standin, flags=("checkpoint:=", "smplx_dir:="))
            self.people = PeoplePipeline(people_config(self.config))
        except Exception as exc:  # a missing asset or detector model: say why, stay unconfigured
            return self._failed("configure", exc)
        self.standin = self.assets.standin  # resolve_assets has said so, loudly
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = {
            "mesh": self.create_publisher(WholeBodyMeshArray, OUTPUT_TOPIC, 10),
            "faces": self.create_publisher(UInt32MultiArray, FACES_TOPIC, latched),
            "markers": self.create_publisher(MarkerArray, MARKERS_TOPIC, 10),
            "overlay": self.create_publisher(Image, OVERLAY_TOPIC, 1),
            "hands": self.create_publisher(HandStateArray, HANDS_TOPIC, 10),
        }
        self.hri = self._make_hri_publisher()
        self.tf = make_transform_broadcaster(self)
        self.check_timer = self.create_timer(1.0, self._guarded(self._check_inputs))
        return self._entered("inactive")

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        loader = threading.Thread(target=self._load_model, name="h4w_model_load", daemon=True)
        self.model_error = ""
        loader.start()
        while loader.is_alive():  # wait in Python so a signal is handled at once
            loader.join(0.1)
            if self.stop.is_set():
                return TransitionCallbackReturn.FAILURE  # shutting down: leave quietly
        if self.model_error:
            return self._failed("activate", self.model_error)
        self._publish_faces()
        self._subscribe(self._choose_reliability())
        self.display_faces = display_faces(self.estimator, self.config.marker_mesh)
        self.running = True
        gc.freeze()  # model and library objects are permanent: keep them out of collector scans
        self._start_stages()
        self.activated_at = time.monotonic()
        self.get_logger().info(
            f"h4w_node active: box_source={self.config.box_source} backend={self.config.backend}/{self.config.precision} "
            f"device={self.config.device} image QoS={self.subscribed_reliability}")
        return self._entered("active")

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._stop_stages()
        self._release_model()
        return self._entered("inactive")

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._drop_outputs()
        return self._entered("unconfigured")

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self.get_logger().error(f"error in lifecycle state {state.label}: {self.state_error or 'see above'}")
        self.close()
        return TransitionCallbackReturn.SUCCESS

    def _entered(self, name: str) -> TransitionCallbackReturn:
        self.lifecycle, self.state_error = name, ""
        return TransitionCallbackReturn.SUCCESS

    def _failed(self, transition: str, exc) -> TransitionCallbackReturn:
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.state_error = f"{transition} failed: {text}"
        self.get_logger().error(f"{self.state_error}; the node keeps running (fix it, then "
                                f"`ros2 lifecycle set {self.get_fully_qualified_name()} {transition}`)")
        return TransitionCallbackReturn.FAILURE

    def close(self) -> None:
        """Stop everything quietly (shutdown): no more publishing, no errors for a frame in flight."""
        self._unsubscribe()
        self._stop_stages()
        self._release_model()
        self._drop_outputs()

    # ---- model -------------------------------------------------------------------------
    def _load_model(self) -> None:
        """Network, backend and body model (on a thread: activate stays responsive to signals)."""
        from h4w_core.inference.estimator import WholeBodyEstimator

        try:
            import torch

            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            torch.set_num_threads(torch_threads(self.config, cores))
            network = None
            if not (self.config.backend == "torch" and self.config.precision == "fp32"):
                from h4w_core.backends import make_runner

                # ONNX Runtime: its own pool, one thread per core, not spinning between calls: spinning
                # threads took the cores the other stages needed (CPU network, 1 person: 3.9-4.35 -> 4.5 Hz)
                options = {"threads": cores, "spinning": False} if self.config.backend == "onnxruntime" else {}
                network = make_runner(self.config.backend, self.assets.checkpoint, device=self.config.device,
                                      precision=self.config.precision, **options)
                network.warmup()  # first-call allocations and kernel selection before the first frame
            estimator = WholeBodyEstimator(self.assets.checkpoint, self.assets.smplx_dir, device=self.config.device, network=network)
            estimator.warm_up_posing(min(self.config.max_persons, WARM_POSING_MAX))  # no trace stalls a stream later
            self.estimator = estimator
        except Exception as exc:  # any failure here must leave a running node that says why
            self.model_error = f"model not loaded: {type(exc).__name__}: {exc}"

    def _release_model(self) -> None:
        estimator, self.estimator = self.estimator, None
        if estimator is not None:
            close = getattr(estimator.network, "close", None)
            if callable(close):
                close()
            del estimator
            gc.collect()
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except ImportError:
                pass

    def _publish_faces(self) -> None:
        faces = self.estimator.faces.astype(np.uint32)
        msg = UInt32MultiArray()
        msg.layout.dim = [
            MultiArrayDimension(label="triangles", size=faces.shape[0], stride=faces.size),
            MultiArrayDimension(label="corners", size=3, stride=3),
        ]
        msg.data = faces.reshape(-1).tolist()
        self.pubs["faces"].publish(msg)

    # ---- input -------------------------------------------------------------------------
    def _choose_reliability(self) -> str:
        """The image QoS: the parameter's, or with 'auto' the camera publisher's (reliable when
        every publisher is; a best-effort one cannot serve a reliable subscription)."""
        if self.config.image_reliability != "auto":
            return self.config.image_reliability
        infos = self.get_publishers_info_by_topic(self.resolve_topic_name("image"))
        if infos and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos):
            return "reliable"
        return "best_effort"

    def _subscribe(self, reliability: str) -> None:
        qos = image_qos(reliability)
        self.image_input = SimpleFilter()
        self.image_sub = self.create_subscription(Image, "image", self._guarded(self._on_image), qos)
        # camera_info is tiny and every frame needs its own: a reader queue of depth 1 loses some
        # whenever callbacks lag (bursts of late images), and their images then never pair
        info_qos = image_qos(reliability, depth=self.config.sync_queue_size)
        self.inputs = [Subscriber(self, CameraInfo, "camera_info", qos_profile=info_qos)]
        names = ["camera_info"]
        if self.config.box_source == "detections":
            self.inputs.append(Subscriber(self, detections_type(self.config.detections_format), "detections", qos_profile=10))
            names.append("detections")
        if self.config.use_depth:
            self.inputs.append(Subscriber(self, Image, "depth", qos_profile=qos))
            names.append("depth")
        for name, sub in zip(names, self.inputs):
            sub.registerCallback(self._guarded(self._remember), name)
        self.input_names = ["image", *names]
        self.sync = ApproximateTimeSynchronizer([self.image_input, *self.inputs], self.config.sync_queue_size, self.config.sync_slop)
        self.last_paired_ns = None
        self.sync.registerCallback(self._guarded(self._on_frame))
        self.subscribed_reliability = reliability

    def _unsubscribe(self) -> None:
        for sub in [self.image_sub, *(s.sub for s in self.inputs)]:
            if sub is not None:
                self.destroy_subscription(sub)
        self.image_sub, self.inputs, self.sync = None, [], None

    def _guarded(self, callback: Callable[..., None]) -> Callable[..., None]:
        """``callback`` reporting its exceptions (throttled, once per type and interval) instead of
        raising them into the executor: the node keeps running, and rclpy's EventsExecutor would log
        every one as FATAL with its traceback, at camera rate for a bug hit on every image."""

        @functools.wraps(callback)
        def run(*args) -> None:
            try:
                callback(*args)
            except Exception as exc:
                report_callback_error(self.log, exc)

        return run

    def _remember(self, msg, name: str) -> None:
        self.latest[name] = msg

    def _on_image(self, msg: Image) -> None:
        now = time.monotonic()
        with self.counts.lock:
            self.counts.received += 1
            self.counts.images_seen.append(now)
            self.counts.last_image_time = now
        stamp = stamp_nanoseconds(msg)
        check = self.stamps.check(stamp, time.monotonic_ns())
        if check.kind == ZERO:
            self._on_zero_stamp(msg)
            return
        jumped = check.kind in (JUMP_AHEAD, JUMP_BACK)
        age = sane_latency_ms(self.get_clock().now().nanoseconds, stamp, self.config.stamp_jump_threshold)
        with self.counts.lock:
            if jumped:
                self.counts.stamp_jumps += 1
                self.counts.transport.clear()  # the gap is the clock's, not images lost
            self.counts.transport.add(stamp)
            if age is not None:
                self.counts.image_ages_ms.append(age)
        if jumped:
            reset_synchronizer(self.sync)
            self.last_paired_ns = None
            self.reset_tracks = self.reset_filters = True
            direction = "ahead" if check.kind == JUMP_AHEAD else "back"
            self.log.report(check.kind, f"image stamp jumped {check.jump_s:+.3f} s ({direction}) from the previous frame "
                                        f"(a looping bag, a camera clock resync): synchroniser and tracks reset")
        discard_unpaired(self.sync, self.last_paired_ns)
        with self.counts.lock:
            self.counts.fed_to_sync += 1
        self.image_input.signalMessage(msg)

    def _on_zero_stamp(self, msg: Image) -> None:
        """Stamps left at zero cannot be paired by time: pair with the newest of each other input."""
        with self.counts.lock:
            self.counts.zero_stamps += 1
        self.log.report("zero_stamp", "image stamps are zero (the camera driver sets no time): frames are paired with the "
                                      "newest camera_info instead of by stamp, and tracked by arrival time")
        others = [self.latest.get(name) for name in self.input_names[1:]]
        if any(o is None for o in others):
            self.counts.lose("sync_dropped")
            return
        self._enqueue(dict(zip(self.input_names, [msg, *others])), zero_stamp=True)

    def _on_frame(self, *messages_in) -> None:
        self.last_paired_ns = stamp_nanoseconds(messages_in[0])
        with self.counts.lock:
            self.counts.paired += 1
            self.counts.last_pair_time = time.monotonic()
        self._enqueue(dict(zip(self.input_names, messages_in)))

    def _enqueue(self, frame: dict, zero_stamp: bool = False) -> None:
        frame["zero_stamp"] = zero_stamp
        if not self.stages:
            return
        with self.counts.lock:
            self.counts.in_flight += 1
        self.stages[0].put(frame)

    def _check_inputs(self) -> None:
        """Once a second: missing camera_info, a camera nobody hears, QoS to match, a second publisher."""
        if self.image_sub is None:
            return
        now = time.monotonic()
        with self.counts.lock:
            seen, paired = self.counts.last_image_time, self.counts.last_pair_time
        image_topic = self.image_sub.topic_name
        if seen and now - seen < 2.0 and now - paired > self.config.camera_info_timeout:
            self.log.report("no_camera_info",
                            f"images arrive on {image_topic} but no camera_info on {self.inputs[0].sub.topic_name} "
                            f"within sync_slop={self.config.sync_slop} s of their stamps: nothing is processed")
        with self.counts.lock:
            lost = self.counts.transport.lost_fraction() if seen and now - seen < 2.0 else None
            period = self.counts.transport.camera_period_s()
        if lost is not None and lost > TRANSPORT_LOSS_WARN:
            self.log.report("transport_loss", transport_loss_hint(image_topic, lost, period, self.subscribed_reliability))
        publishers = self.count_publishers(image_topic)
        if publishers and not self.publishers_seen_since:
            self.publishers_seen_since = now
        elif not publishers:
            self.publishers_seen_since = 0.0
        if publishers and not seen and now - self.publishers_seen_since >= NO_IMAGES_HINT_S:
            self.log.report("no_images", no_images_hint(image_topic, publishers, self.subscribed_reliability))
        if self.config.image_reliability == "auto" and publishers:  # follow the camera, also one started later
            wanted = self._choose_reliability()
            if wanted != self.subscribed_reliability:
                self.get_logger().info(f"camera on {image_topic} publishes {wanted}: subscribing {wanted}")
                self._unsubscribe()
                self._subscribe(wanted)
        if self.count_publishers(self.pubs["mesh"].topic_name) > 1:
            self.log.report("duplicate_output", f"another node also publishes {self.pubs['mesh'].topic_name}: two h4w nodes on "
                                                "one camera? Run each in its own namespace (launch argument namespace:=...)")

    # ---- stages ------------------------------------------------------------------------
    def _start_stages(self) -> None:
        """prepare (image, boxes, tracks) -> network (estimate, smooth) -> posing (SMPL-X, placement,
        depth) -> output (messages, TF); markers on their own thread at marker_rate from the newest
        result. While the network runs on a frame, the previous one is posed and the one before
        that published."""
        on_end, on_error = self.counts.finish, self._stage_failed
        output = Stage("output", self._output, on_end, on_error)
        posing = Stage("posing", self._pose, on_end, on_error, downstream=output)
        network = Stage("network", self._infer, on_end, on_error, downstream=posing)
        prepare = Stage("prepare", self._prepare, on_end, on_error, downstream=network)
        self.stages = [prepare, network, posing, output]
        for stage in self.stages:
            stage.start()
        self.markers = MarkerThread(self)
        self.markers.start()

    def _stop_stages(self) -> None:
        self.running = False
        for stage in self.stages:
            stage.stop(WORKER_JOIN_S)
        if self.markers is not None:
            self.markers.stop(WORKER_JOIN_S)
        self.stages, self.markers = [], None

    def _stage_failed(self, stage: str, exc: Exception) -> None:
        self.log.report(f"failed:{stage}:{type(exc).__name__}", f"frame skipped in {stage}: {type(exc).__name__}: {exc}", "error")

    def _prepare(self, frame: dict):
        """Image conversion, camera, person boxes, crops and track ids."""
        estimator, people = self.estimator, self.people
        if estimator is None or people is None:
            return "not_ready"
        started = time.monotonic()
        image_msg, info = frame["image"], frame["camera_info"]
        try:
            if image_msg.encoding not in NETWORK_ENCODINGS:
                raise ImageConversionError(f"encoding {image_msg.encoding!r} is not a camera colour/grey image; "
                                           f"supported: {', '.join(NETWORK_ENCODINGS)}")
            image, order = image_to_numpy(image_msg, copy=False)  # read-only, the message's own bytes
        except ImageConversionError as exc:
            cause = re.sub(r"\d+", "#", str(exc).split(":")[0])  # the kind of problem, not its numbers
            self.log.report(f"image_rejected:{cause}", f"image rejected: {exc}", "error")
            return "bad_input"
        if order == "mono":
            image, order = np.repeat(image[:, :, None], 3, axis=2), "rgb"
        height, width = image.shape[:2]
        stamp_ns = stamp_nanoseconds(image_msg)
        stamp_s = (self.get_clock().now().nanoseconds if frame["zero_stamp"] else stamp_ns) * 1e-9
        if self.rebuild_people:
            self._rebuild_people()
            people = self.people
        if self.reset_tracks:
            self.reset_tracks = False
            people.reset_tracks()
        given = detection_boxes(frame.get("detections")) if self.config.box_source == "detections" else None
        return {
            "header": image_msg.header, "image": image, "order": order, "stamp_ns": stamp_ns, "stamp_s": stamp_s,
            "intrinsics": self._intrinsics(info, width, height), "started": started, "people": people,
            "depth": self._registered_depth(frame["depth"], (height, width)) if "depth" in frame else None,
            "prepared": people.prepare(estimator, image, order, given),
        }

    def _infer(self, item: dict):
        """The network and smoothing."""
        estimator = self.estimator
        if estimator is None:
            return "not_ready"
        people = item["people"]
        if self.reset_filters:
            self.reset_filters = False
            people.reset_filters()
        item["estimated"] = people.estimate(estimator, item["prepared"], item["stamp_s"])
        return item

    def _pose(self, item: dict):
        """SMPL-X posing, placement in the camera and depth placement."""
        estimator = self.estimator
        if estimator is None:
            return "not_ready"
        item["result"] = item["people"].place(estimator, item["estimated"], item["intrinsics"], item["depth"])
        self._account(item["result"])
        return item

    def _output(self, item: dict) -> str:
        """Messages and TF (markers follow on their own thread)."""
        if not self.running or self.estimator is None:
            return "not_ready"
        results = list(item["result"].people)
        hands = self._publish(item["header"], results, item["image"], item["order"], item["intrinsics"])
        self.markers.offer(item["header"], results, hands)
        done = time.monotonic()
        latency = sane_latency_ms(self.get_clock().now().nanoseconds, item["stamp_ns"], self.config.stamp_jump_threshold)
        with self.counts.lock:
            self.counts.published.append(done)
            self.counts.processing_ms.append((done - item["started"]) * 1000.0)
            if latency is not None:
                self.counts.latencies_ms.append(latency)
        return "processed"

    def _intrinsics(self, info: CameraInfo, width: int, height: int) -> Intrinsics:
        """The camera's K, or the documented fallback (focal max(W, H), centred) with a throttled warning."""
        k = camera_intrinsics(info)
        if k is None:
            self.log.report("camera_info_k", "camera_info has no usable K (unset, not finite or absurd focal): "
                                             "assuming focal max(W, H) and a centred principal point")
            return Intrinsics.default_for(width, height)
        if (info.width, info.height) != (0, 0) and (info.width, info.height) != (width, height):
            self.log.report("camera_info_size", f"camera_info is for {info.width}x{info.height} but the image is "
                                                f"{width}x{height}: its K does not apply; assuming focal max(W, H)")
            return Intrinsics.default_for(width, height)
        return k

    def _registered_depth(self, depth_msg: Image, shape) -> np.ndarray | None:
        """The depth image as an array when it is registered to the colour image, else None (said per cause)."""
        try:
            depth, _ = image_to_numpy(depth_msg)
        except ImageConversionError as exc:
            self.log.report("depth_rejected", f"depth image rejected: {exc}", "error")
            return None
        if depth.shape[:2] != tuple(shape) or depth.ndim != 2:
            self.log.report("depth_size", f"depth image {depth.shape} is not registered to the {shape[1]}x{shape[0]} colour image", "error")
            return None
        return depth

    def _account(self, result) -> None:
        """Counts and the reason a frame had nobody (for /diagnostics)."""
        now = time.monotonic()
        reason = ""
        if not result.people:
            if result.boxes == 0:
                reason = f"no persons found (box_source={self.config.box_source})"
            elif result.invalid_boxes == result.boxes:
                reason = "all person boxes invalid (empty, outside the image or not finite)"
            elif result.non_finite:
                reason = "outputs were not finite"
            else:
                reason = "tracks not confirmed yet"
        with self.counts.lock:
            self.counts.persons_output += len(result.people)
            self.counts.invalid_boxes += result.invalid_boxes
            self.counts.non_finite_persons += result.non_finite
            if result.people:
                self.counts.last_person_time = now
            if result.non_finite:
                self.counts.last_non_finite_time = now
            self.counts.last_empty_reason = reason
        if result.invalid_boxes:
            self.log.report("invalid_boxes", f"{result.invalid_boxes} person box(es) could not be cropped (empty, outside "
                                             "the image or not finite) and were skipped")
        if result.non_finite:
            self.log.report("non_finite", f"{result.non_finite} person(s) dropped: the network's outputs were not finite "
                                          "(check camera_info and the image)", "error")

    def _rebuild_people(self) -> None:
        self.rebuild_people = False
        try:
            self.people = PeoplePipeline(people_config(self.config))
        except Exception as exc:  # keep the previous pipeline, say why
            self.log.report("people_rebuild", f"new people settings not applied: {type(exc).__name__}: {exc}", "error")

    # ---- output ------------------------------------------------------------------------
    def _publish(self, header: Header, results: list[PersonResult], image: np.ndarray, order: str,
                 intrinsics: Intrinsics) -> list[tuple[HandState, HandState]]:
        """Every output of one frame; returns the (left, right) hand states per person (for the markers)."""
        config = self.config
        hands = [person_hand_states(r, self.hand_config) for r in results]
        people = [set_hand_fields(messages.person_message(r, config.publish_mesh), states, r.track_id)
                  for r, states in zip(results, hands)]
        self.pubs["mesh"].publish(messages.array_message(header, people))
        if config.publish_hands:
            self.pubs["hands"].publish(hand_state_array(header, list(zip(results, hands))))
        if config.publish_tf and results:
            self.tf.sendTransform(rep155.people_transforms(results, header, config.frame_prefix))
        if self.hri is not None:
            self.hri.publish(header, results, image if order == "rgb" else image[:, :, ::-1], image.shape[1], image.shape[0])
        if config.publish_overlay:
            bgr = image[:, :, ::-1] if order == "rgb" else image
            canvas = render_overlay(bgr, results, self.estimator.faces, intrinsics, self.standin)
            self.pubs["overlay"].publish(numpy_to_image(np.ascontiguousarray(canvas), "bgr8", header))
        return hands

    def _make_hri_publisher(self) -> HriPublisher | None:
        """The REP 155 topics when `hri` is on and hri_msgs is installed (else a one-line notice)."""
        if not self.config.hri:
            return None
        if not hri_available():
            self.log.once("hri_missing", "hri: true but hri_msgs is not installed: no REP 155 topics under /humans "
                                         "(apt install ros-$ROS_DISTRO-hri-msgs, or hri:=false); TF frames follow REP 155 anyway", "info")
            return None
        return HriPublisher(self)

    def _drop_outputs(self) -> None:
        for pub in self.pubs.values():
            self.destroy_publisher(pub)
        self.pubs = {}
        if self.hri is not None:
            self.hri.close()
            self.hri = None
        if self.check_timer is not None:
            self.destroy_timer(self.check_timer)
            self.check_timer = None
        self.people = None

    # ---- parameters ----------------------------------------------------------------------
    def _on_set_parameters(self, parameters) -> SetParametersResult:
        try:
            new = check_update(self.config, parameters)
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        changed = {p.name for p in parameters}
        old, self.config = self.config, new
        if changed & PEOPLE_PARAMETERS:
            self.rebuild_people = True
        if changed & {"hand_straight_max", "hand_curled_min", "hand_pinch_aperture"}:
            self.hand_config = hand_config(new)
        if "stamp_jump_threshold" in changed:
            self.stamps = StampGuard(new.stamp_jump_threshold)
        if "diagnostics_period" in changed and new.diagnostics_period != old.diagnostics_period:
            self.destroy_timer(self.diag_timer)
            self.diag_timer = self.create_timer(new.diagnostics_period, self._guarded(self._publish_diagnostics))
        return SetParametersResult(successful=True)

    # ---- diagnostics -----------------------------------------------------------------------
    def frame_accounting(self) -> dict[str, int]:
        """Every frame received, by fate (received = processed + losses + in flight)."""
        in_sync = 0
        if self.sync is not None:
            discard_unpaired(self.sync, self.last_paired_ns)  # never paired: sync_dropped, not in flight
            in_sync = queued(self.sync)
        with self.counts.lock:
            c = self.counts
            losses = dict(c.losses)
            losses["sync_dropped"] += c.fed_to_sync - c.paired - in_sync
            in_flight = in_sync + c.in_flight
            return {"frames_received": c.received, "frames_processed": c.processed, **losses,
                    "frames_in_flight": int(in_flight), "stamp_jumps": c.stamp_jumps, "zero_stamps": c.zero_stamps}

    def _publish_diagnostics(self) -> None:
        accounting = self.frame_accounting()
        now = time.monotonic()
        with self.counts.lock:
            c = self.counts
            values = {
                "lifecycle_state": self.lifecycle,
                "input_rate_hz": f"{rate_hz(c.images_seen):.2f}",
                "output_rate_hz": f"{rate_hz(c.published):.2f}",
                "latency_ms_p50": f"{np.median(c.latencies_ms):.1f}" if c.latencies_ms else "nan",
                "latency_ms_mean": f"{np.mean(c.latencies_ms):.1f}" if c.latencies_ms else "nan",
                "latency_ms_max": f"{np.max(c.latencies_ms):.1f}" if c.latencies_ms else "nan",
                "processing_ms_mean": f"{np.mean(c.processing_ms):.1f}" if c.processing_ms else "nan",
                # how old images are on arrival: the camera driver and the transport, before this node
                "image_age_ms_p50": f"{np.median(c.image_ages_ms):.1f}" if c.image_ages_ms else "nan",
                **{k: str(v) for k, v in accounting.items()},
                "dropped_frames": str(sum(accounting[k] for k in LOSSES if k != "bad_input")),
                "bad_input_frames": str(accounting["bad_input"]),
                "persons_output": str(c.persons_output),
                "non_finite_persons": str(c.non_finite_persons),
                "invalid_boxes": str(c.invalid_boxes),
                "image_qos": self.subscribed_reliability,
            }
            lost, period = c.transport.lost_fraction(), c.transport.camera_period_s()
            values["camera_stamp_rate_hz"] = f"{1.0 / period:.2f}" if period else "nan"
            values["images_lost_in_transport_pct"] = f"{lost * 100:.1f}" if lost is not None else "nan"
            images_recent = bool(c.last_image_time) and now - c.last_image_time < 2.0
            idle_for = now - max(c.last_person_time, self.activated_at)
            non_finite_recent = c.last_non_finite_time and now - c.last_non_finite_time < max(10.0, 3 * self.config.diagnostics_period)
            empty_reason = c.last_empty_reason
        for stage in [*self.stages, *([self.markers] if self.markers else [])]:
            ms, cpu_ms = stage.times.median_ms(), stage.times.median_cpu_ms()
            values[f"stage_{stage.name}_ms"] = f"{ms:.1f}" if ms is not None else "nan"
            values[f"stage_{stage.name}_cpu_ms"] = f"{cpu_ms:.1f}" if cpu_ms is not None else "nan"
            if isinstance(stage, Stage):
                values[f"stage_{stage.name}_dropped"] = str(stage.dropped)
        values["limiting_stage"] = limiting_stage(self.stages)
        values.update({"backend": self.config.backend, "precision": self.config.precision, "device": self.config.device,
                       "box_source": self.config.box_source, "standin_assets": str(self.standin),
                       "executor": type(self.executor).__name__ if self.executor is not None else "none"})
        status = DiagnosticStatus(name=f"{self.get_fully_qualified_name()}: whole-body estimation", hardware_id=self.config.device)
        if self.state_error:
            status.level, status.message = DiagnosticStatus.ERROR, self.state_error
        elif non_finite_recent:
            status.level, status.message = DiagnosticStatus.ERROR, "persons dropped: non-finite outputs (check camera_info)"
        elif self.lifecycle != "active":
            status.level, status.message = DiagnosticStatus.WARN, f"lifecycle state {self.lifecycle}: not processing"
        elif images_recent and idle_for > self.config.idle_warning_timeout:
            why = empty_reason or "frames are not paired with camera_info"
            status.level, status.message = DiagnosticStatus.WARN, f"no person output for {idle_for:.0f} s: {why}"
        elif images_recent and lost is not None and lost > TRANSPORT_LOSS_WARN:
            status.level, status.message = DiagnosticStatus.WARN, (f"about {lost * 100:.0f}% of the camera's images never arrive "
                                                                   "(transport; see the log for what to change)")
        elif self.standin:
            status.level, status.message = DiagnosticStatus.WARN, "running on STAND-IN assets (not real estimates)"
        elif not images_recent:
            status.level, status.message = DiagnosticStatus.WARN, "no images received"
        else:
            status.level, status.message = DiagnosticStatus.OK, "running"
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [status]
        self.diag_pub.publish(msg)


def torch_threads(config: NodeConfig, cores: int) -> int:
    """torch's CPU thread count for the node: the parameter, or with 0 (auto) one per core when a
    torch backend runs the network on the CPU, else 1. The stages run at once: measured with the
    emulated 5 ms network and 4 persons, 1 thread gave 26 Hz where one per core gave 15 Hz, its
    idle threads spinning on the cores the other stages needed."""
    if config.torch_threads > 0:
        return config.torch_threads
    torch_network_on_cpu = config.backend in ("torch", "torch_compiled") and config.device == "cpu"
    return cores if torch_network_on_cpu else 1


def transport_loss_hint(topic: str, lost: float, period_s: float, reliability: str) -> str:
    """What to change when many of the camera's images never arrive."""
    change = ("best effort drops a large image when any of its fragments is lost: make the camera publish reliable "
              "(image_reliability:=auto follows it)" if reliability == "best_effort" else
              "the transport falls behind the camera")
    return (f"about {lost * 100:.0f}% of the images stamped on {topic} never arrive (the camera stamps "
            f"{1.0 / period_s:.1f} Hz; subscribed {reliability}): {change}, or start the camera driver and this node with "
            f"FASTDDS_DEFAULT_PROFILES_FILE=$(ros2 pkg prefix h4w_ros)/share/h4w_ros/config/fastdds_large_images.xml "
            "(shared memory for large images), or lower the camera's resolution or rate")


def no_images_hint(topic: str, publishers: int, reliability: str) -> str:
    """What to change when a camera publishes but nothing arrives (the Fast DDS large-image case)."""
    return (f"{publishers} publisher(s) on {topic} but no image arrived in {NO_IMAGES_HINT_S:.0f} s "
            f"(subscribed {reliability}). Large images over Fast DDS shared memory: start the camera driver with "
            "FASTDDS_DEFAULT_PROFILES_FILE=$(ros2 pkg prefix h4w_ros)/share/h4w_ros/config/fastdds_large_images.xml, "
            "or make it publish reliable (image_reliability:=auto follows it)")


def report_callback_error(log: CauseLog, exc: Exception) -> None:
    log.report(f"callback:{type(exc).__name__}", f"callback failed: {type(exc).__name__}: {exc}", "error")


def make_executor(choice: str, log=None, context: rclpy.Context | None = None):
    """The executor for ``executor`` (params.EXECUTORS). rclpy's EventsExecutor (rclpy 9 and later)
    spends less Python per message than SingleThreadedExecutor: measured paired with a 120 Hz camera,
    4 persons went from 31-32 to 36 Hz. Where rclpy lacks it, 'auto' and 'events' use single_threaded
    ('events' says so once)."""
    if choice in ("auto", "events"):
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            if choice == "events" and log is not None:
                log.once("executor", "executor: events needs rclpy's EventsExecutor (rclpy 9, Kilted, or later); "
                                     "using single_threaded")
        else:
            return EventsExecutor(context=context)
    return SingleThreadedExecutor(context=context)


def main(argv: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; exit 0 on any signal, 2 on a configuration error."""
    # h4w_core reports through Python logging: give it the same stream and a ROS-like prefix
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())  # repeated signals only set it again
    rclpy.init(args=argv if argv is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node, code = None, 0
    try:
        node = WholeBodyNode(stop=stop)
        if node.config.autostart:
            node.start()
        executor = make_executor(node.config.executor, node.log)
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            try:
                executor.spin_once(timeout_sec=0.1)
            except (ExternalShutdownException, KeyboardInterrupt):
                raise
            except Exception as exc:  # a bug in one callback must not end a node that runs for days
                report_callback_error(node.log, exc)
    except ParameterError as exc:  # bad parameters: say which and stop
        print(f"h4w_node: configuration error: {exc}", file=sys.stderr)
        code = 2
    except ExternalShutdownException:
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    # Leave without interpreter teardown: a frame or a model load may still be running in C code on
    # a worker thread (teardown under it can abort), and teardown restores the default signal
    # handlers, so a second Ctrl-C arriving meanwhile would kill the process with -2.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
