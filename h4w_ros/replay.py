"""h4w-replay: play an image sequence with camera_info into a running h4w_node and record what
it publishes (WholeBodyMeshArray, TF, markers, faces, diagnostics) to a folder.

Writes <out>/summary.json (per frame: stamp, people, track ids, vertex counts, how many
vertices project inside the image) and <out>/frame_XXX.png overlays drawn from the received
messages alone (vertices projected with the published camera_info), so the folder shows
exactly what a subscriber got.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, UInt32MultiArray
from tqdm import tqdm
from visualization_msgs.msg import MarkerArray

from h4w_core.cli.common import fail, non_negative_number, read_image
from h4w_core.inference.camera import Intrinsics
from h4w_core.io.render import draw_banner, draw_mesh, person_colour
from h4w_ros.image_conversion import numpy_to_image
from h4w_ros.msg import WholeBodyMeshArray
from h4w_ros.node import FACES_TOPIC, MARKERS_TOPIC, OUTPUT_TOPIC

try:  # the real message when installed, else the project's stand-in of the same type
    from tf2_msgs.msg import TFMessage
except ImportError:  # pragma: no cover - depends on the install
    TFMessage = None

PROG = "h4w-replay"


def camera_info_for(width: int, height: int, header: Header) -> CameraInfo:
    """CameraInfo of the player's camera: Intrinsics.default_for(width, height), no distortion."""
    k = Intrinsics.default_for(width, height)
    info = CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob")
    info.k = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
    info.p = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5
    return info


@dataclass
class Recording:
    meshes: list = field(default_factory=list)
    tf: list = field(default_factory=list)
    markers: list = field(default_factory=list)
    diagnostics: list = field(default_factory=list)
    faces: UInt32MultiArray | None = None


class Recorder(Node):
    """Subscribes to everything h4w_node publishes."""

    def __init__(self, name: str = "h4w_recorder", **kwargs):
        super().__init__(name, **kwargs)
        self.rec = Recording()
        self.create_subscription(WholeBodyMeshArray, OUTPUT_TOPIC, self.rec.meshes.append, 10)
        self.create_subscription(MarkerArray, MARKERS_TOPIC, self.rec.markers.append, 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self.rec.diagnostics.append, 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(UInt32MultiArray, FACES_TOPIC, self._on_faces, latched)
        if TFMessage is not None:
            self.create_subscription(TFMessage, "/tf", self.rec.tf.append, 100)

    def _on_faces(self, msg: UInt32MultiArray) -> None:
        self.rec.faces = msg


class Player(Node):
    """Publishes image + camera_info pairs with the same stamp and frame id."""

    def __init__(self, image_topic: str, info_topic: str, frame_id: str = "camera_optical_frame", **kwargs):
        super().__init__("h4w_player", **kwargs)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.create_publisher(Image, image_topic, qos)
        self.info_pub = self.create_publisher(CameraInfo, info_topic, qos)
        self.frame_id = frame_id

    def publish(self, rgb: np.ndarray, encoding: str = "rgb8", with_info: bool = True) -> Header:
        header = Header(frame_id=self.frame_id, stamp=self.get_clock().now().to_msg())
        data = rgb[:, :, ::-1] if encoding == "bgr8" else rgb
        self.image_pub.publish(numpy_to_image(np.ascontiguousarray(data), encoding, header))
        if with_info:
            self.info_pub.publish(camera_info_for(rgb.shape[1], rgb.shape[0], header))
        return header


def summarise(msg: WholeBodyMeshArray, width: int, height: int, camera: Intrinsics) -> dict:
    people = []
    for p in msg.people:
        v = np.asarray(p.vertices, dtype=np.float64).reshape(-1, 3)
        inside = 0
        if len(v):
            u, w = camera.project(v).T
            inside = int(np.sum((v[:, 2] > 0) & (u >= 0) & (u < width) & (w >= 0) & (w < height)))
        people.append({"track_id": int(p.track_id), "score": float(p.score), "bbox": [round(float(b), 1) for b in p.bbox],
                       "vertices": len(v), "vertices_in_image": inside, "pelvis_m": [round(float(c), 3) for c in
                       (p.root_pose.position.x, p.root_pose.position.y, p.root_pose.position.z)]})
    return {"stamp": msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, "frame_id": msg.header.frame_id, "people": people}


def draw_received(rgb: np.ndarray, msg: WholeBodyMeshArray, faces: np.ndarray, camera: Intrinsics) -> np.ndarray:
    canvas = rgb.copy()
    for i, p in enumerate(msg.people):
        v = np.asarray(p.vertices, dtype=np.float64).reshape(-1, 3)
        if not len(v):
            continue
        canvas = draw_mesh(canvas, v, camera.project(v), faces, person_colour(p.track_id if p.track_id >= 0 else i))
        x1, y1 = int(p.bbox[0]), int(p.bbox[1])
        cv2.putText(canvas, f"id {p.track_id}", (x1 + 4, y1 + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def play(frames: list[np.ndarray], out_dir: Path, image_topic: str, info_topic: str, period_s: float,
         wait_s: float, standin_banner: bool = True) -> dict:
    """Publish frames one at a time, waiting (up to wait_s) for each frame's output."""
    out_dir.mkdir(parents=True, exist_ok=True)
    player, recorder = Player(image_topic, info_topic), Recorder()
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(player)
    executor.add_node(recorder)
    summary = {"frames": []}
    try:
        deadline = time.monotonic() + wait_s  # the node subscribes once its model is loaded
        while time.monotonic() < deadline and (
            player.image_pub.get_subscription_count() == 0 or recorder.count_publishers(OUTPUT_TOPIC) == 0
        ):
            executor.spin_once(timeout_sec=0.1)
        executor.spin_once(timeout_sec=0.5)  # let the matching settle both ways
        for index, rgb in enumerate(tqdm(frames, desc="replay", unit="frame", file=sys.stderr)):
            before = len(recorder.rec.meshes)
            header = player.publish(rgb)
            stamp = (header.stamp.sec, header.stamp.nanosec)
            limit = time.monotonic() + (wait_s if index == 0 else max(period_s * 20, 30.0))
            while time.monotonic() < limit:
                executor.spin_once(timeout_sec=0.05)
                got = [m for m in recorder.rec.meshes[before:] if (m.header.stamp.sec, m.header.stamp.nanosec) == stamp]
                if got:
                    break
            else:
                summary["frames"].append({"index": index, "received": False})
                continue
            h, w = rgb.shape[:2]
            camera = Intrinsics.default_for(w, h)  # what camera_info_for published
            item = summarise(got[0], w, h, camera)
            item.update(index=index, received=True)
            summary["frames"].append(item)
            if recorder.rec.faces is not None:
                faces = np.asarray(recorder.rec.faces.data, dtype=np.int64).reshape(-1, 3)
                canvas = draw_received(rgb, got[0], faces, camera)
                if standin_banner:
                    draw_banner(canvas, "STAND-IN ASSETS - pipeline demo, not real estimates")
                cv2.imwrite(str(out_dir / f"frame_{index:03d}.png"), canvas[:, :, ::-1])
            time.sleep(period_s)
        executor.spin_once(timeout_sec=0.2)
        summary["tf_messages"] = len(recorder.rec.tf)
        summary["tf_frames"] = sorted({t.child_frame_id for m in recorder.rec.tf for t in m.transforms})
        summary["marker_messages"] = len(recorder.rec.markers)
        summary["faces_received"] = recorder.rec.faces is not None
        if recorder.rec.diagnostics:
            last = recorder.rec.diagnostics[-1].status[0]
            summary["diagnostics"] = {"level": int.from_bytes(last.level, "little") if isinstance(last.level, bytes) else int(last.level),
                                      "message": last.message, **{kv.key: kv.value for kv in last.values}}
    finally:
        executor.shutdown()
        player.destroy_node()
        recorder.destroy_node()
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_frames(paths: list[Path]) -> list[np.ndarray]:
    """RGB frames; ImageReadError (a ValueError, one line naming the file) for a missing,
    unreadable or oversized image."""
    return [np.ascontiguousarray(read_image(p)[:, :, ::-1]) for p in paths]


def _count(smallest: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < smallest:
            raise argparse.ArgumentTypeError(f"must be at least {smallest}, got {value}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("images", nargs="*", type=Path, help="image files in order (default: a built-in crowd sequence)")
    p.add_argument("--out", type=Path, default=Path("out/replay"))
    p.add_argument("--image-topic", default="/camera/image_raw")
    p.add_argument("--camera-info-topic", default="/camera/camera_info")
    p.add_argument("--frames", type=_count(2), default=8, help="length of the built-in sequence (at least 2)")
    p.add_argument("--period", type=non_negative_number, default=0.2, help="seconds between frames")
    p.add_argument("--wait", type=non_negative_number, default=120.0, help="seconds to wait for the node's first output")
    args = p.parse_args(argv)
    if args.images:  # read (or refuse) every image before any ROS context or node exists
        try:
            frames = load_frames(args.images)
        except ValueError as exc:
            return fail(PROG, 1, exc)
    else:
        from h4w_core.testing.sequence import make_crowd_sequence

        frames = make_crowd_sequence(num_frames=args.frames).frames
    rclpy.init()
    try:
        summary = play(frames, args.out, args.image_topic, args.camera_info_topic, args.period, args.wait)
    finally:
        rclpy.try_shutdown()
    received = sum(f["received"] for f in summary["frames"])
    print(json.dumps({k: v for k, v in summary.items() if k != "tf_frames"}, indent=1)[:4000])
    if not received:
        return fail(PROG, 1, f"no output from h4w_node within {args.wait:g} s: is it running, active and subscribed to "
                             f"{args.image_topic} and {args.camera_info_topic}? (wrote {args.out}/summary.json)")
    print(f"received output for {received}/{len(summary['frames'])} frames; wrote {args.out}/summary.json and overlays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
