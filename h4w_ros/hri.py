"""REP 155 (ROS4HRI) topics for h4w's people: what a libhri / pyhri application subscribes to.

Needs hri_msgs (https://github.com/ros4hri/hri_msgs, 2.x); imported lazily, so the rest of h4w
works without it: test :func:`hri_available` before creating an :class:`HriPublisher`.

Per frame, :meth:`HriPublisher.publish` writes (``<b>`` = rep155.body_id(track_id),
``<f>`` = rep155.face_id(track_id)):

=================================  ===========================================  ==========================
topic                              type                                         content
=================================  ===========================================  ==========================
/humans/bodies/tracked             hri_msgs/IdsList                             ids of the tracked bodies
/humans/bodies/<b>/roi             hri_msgs/NormalizedRegionOfInterest2D        person box (the box given
                                                                                to the network) / image
                                                                                size, clipped; c = score
/humans/bodies/<b>/cropped         sensor_msgs/Image (rgb8)                     that box cut from the image
/humans/bodies/<b>/skeleton2d      hri_msgs/Skeleton2D                          18 points, see SKELETON2D
/humans/bodies/<b>/joint_states    sensor_msgs/JointState                       rep155.urdf_joint_positions
/humans/faces/tracked              hri_msgs/IdsList                             ids of the visible faces
/humans/faces/<f>/roi              hri_msgs/NormalizedRegionOfInterest2D        face box / image size
/humans/faces/<f>/cropped          sensor_msgs/Image (rgb8)                     the face box cut out
/humans/candidate_matches          hri_msgs/IdsMatch                            body <b> <-> face <f>, 1.0
=================================  ===========================================  ==========================

Only tracked people (track_id >= 0) are published: REP ids must be stable. A face is published
while it is turned towards the camera (rep155.face_visible; Hand4Whole predicts a face box even
for a person seen from behind) and its box overlaps the image. Per-id publishers are created when
an id first appears and destroyed in the first frame without it, so the topics of a track that
ended disappear from the graph (count_publishers == 0). A per-id message is built only while its
topic has a subscriber (lazy, as image_pipeline's nodes are): crops and joint states cost the
output stage time in every frame, and most people's topics have no listener.

Skeleton2D confidences: PersonResult has no per-joint scores (the network regresses the pose), so
a point's ``c`` is 1.0 when its projection lies inside the image and 0.0 outside (x, y are then
clipped to [0, 1]).

QoS: reliable, volatile, keep-last; depth 1 for the tracked lists and every per-id topic (what
ros4hri's hri_fullbody and hri_face_detect publish with, and what libhri subscribes with);
depth 10 for /humans/candidate_matches, where one message per match is sent each frame.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import numpy as np
from sensor_msgs.msg import Image, JointState

from h4w_core.model.joint_tables import joint_indices
from h4w_ros import rep155
from h4w_ros.image_conversion import numpy_to_image

ROOT = "/humans"
PER_ID_DEPTH = 1
TRACKED_DEPTH = 1
MATCHES_DEPTH = 10

# Skeleton2D index constant -> joint of the 137 set (hri_msgs' constants: LEFT_EYE = 14 ... RIGHT_EAR = 17)
SKELETON2D: tuple[tuple[str, str], ...] = (
    ("NOSE", "Nose"), ("NECK", "Neck"),
    ("RIGHT_SHOULDER", "R_Shoulder"), ("RIGHT_ELBOW", "R_Elbow"), ("RIGHT_WRIST", "R_Wrist"),
    ("LEFT_SHOULDER", "L_Shoulder"), ("LEFT_ELBOW", "L_Elbow"), ("LEFT_WRIST", "L_Wrist"),
    ("RIGHT_HIP", "R_Hip"), ("RIGHT_KNEE", "R_Knee"), ("RIGHT_ANKLE", "R_Ankle"),
    ("LEFT_HIP", "L_Hip"), ("LEFT_KNEE", "L_Knee"), ("LEFT_ANKLE", "L_Ankle"),
    ("LEFT_EYE", "L_Eye"), ("RIGHT_EYE", "R_Eye"), ("LEFT_EAR", "L_Ear"), ("RIGHT_EAR", "R_Ear"),
)
_SKELETON_JOINTS = np.array(joint_indices(*(j for _, j in SKELETON2D)), dtype=np.intp)

HRI_SKIP_REASON = ("hri_msgs is not importable: install ros4hri's hri_msgs (apt ros-<distro>-hri-msgs, "
                   "or the wheel in ../shared/ros/wheels)")


def _hri_msgs():
    return importlib.import_module("hri_msgs.msg")


def hri_available() -> bool:
    """True when hri_msgs (the REP 155 messages) is importable."""
    try:
        _hri_msgs()
    except ImportError:
        return False
    return True


def body_topic(body_id: str, leaf: str, root: str = ROOT) -> str:
    return f"{root}/bodies/{body_id}/{leaf}"


def face_topic(face_id: str, leaf: str, root: str = ROOT) -> str:
    return f"{root}/faces/{face_id}/{leaf}"


def _xyxy_normalised(box_xyxy, width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = np.asarray(box_xyxy, dtype=np.float64).reshape(4).tolist()
    return (min(max(x1 / width, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0),
            min(max(x2 / width, 0.0), 1.0), min(max(y2 / height, 0.0), 1.0))


def _crop(image: np.ndarray, box_xyxy) -> np.ndarray | None:
    """The pixels of a box (x1 y1 x2 y2) clipped to the image, None when nothing is left."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = np.asarray(box_xyxy, dtype=np.float64).reshape(4)
    if not np.all(np.isfinite((x1, y1, x2, y2))):
        return None
    c1, r1 = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.floor(y1), 0, h))
    c2, r2 = int(np.clip(np.ceil(x2), 0, w)), int(np.clip(np.ceil(y2), 0, h))
    if c2 <= c1 or r2 <= r1:
        return None
    return image[r1:r2, c1:c2]


def input_box_xyxy(result) -> np.ndarray:
    x, y, w, h = np.asarray(result.track.input_box, dtype=np.float64).reshape(4)
    return np.array([x, y, x + w, y + h])


def face_in_image(result, width: int, height: int) -> bool:
    x1, y1, x2, y2 = np.asarray(result.face_bbox, dtype=np.float64).reshape(4)
    return bool(np.all(np.isfinite((x1, y1, x2, y2))) and x2 > max(x1, 0.0) and y2 > max(y1, 0.0)
                and x1 < width and y1 < height)


def _listened(publishers: dict[str, object]) -> dict[str, object]:
    """The publishers that have a subscriber now (their messages are worth building)."""
    return {leaf: pub for leaf, pub in publishers.items() if pub.get_subscription_count() > 0}


class HriPublisher:
    """Publishes h4w's people on the REP 155 topics from an rclpy node (module docstring).

    ``publish(header, results, image_rgb, width, height)`` once per processed frame (also with
    no people: the tracked lists go out empty and the per-id topics of ended tracks are removed);
    ``close()`` destroys every publisher it made. Not thread-safe: call both from one thread.
    ``body_id_fn`` / ``face_id_fn`` map a track id to the REP id (rep155.body_id / face_id).
    """

    def __init__(self, node, root: str = ROOT, publish_cropped: bool = True,
                 body_id_fn: Callable[[int], str] = rep155.body_id,
                 face_id_fn: Callable[[int], str] = rep155.face_id):
        try:
            self._msgs = _hri_msgs()
        except ImportError as exc:
            raise RuntimeError(HRI_SKIP_REASON) from exc
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        def qos(depth: int) -> QoSProfile:
            return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.VOLATILE)

        self.node = node
        self.root = root
        self.publish_cropped = publish_cropped
        self.body_id_fn = body_id_fn
        self.face_id_fn = face_id_fn
        self._per_id_qos = qos(PER_ID_DEPTH)
        m = self._msgs
        self._bodies_tracked = node.create_publisher(m.IdsList, f"{root}/bodies/tracked", qos(TRACKED_DEPTH))
        self._faces_tracked = node.create_publisher(m.IdsList, f"{root}/faces/tracked", qos(TRACKED_DEPTH))
        self._matches = node.create_publisher(m.IdsMatch, f"{root}/candidate_matches", qos(MATCHES_DEPTH))
        self._bodies: dict[str, dict[str, object]] = {}  # id -> leaf -> publisher
        self._faces: dict[str, dict[str, object]] = {}
        self._skeleton_index = np.array([getattr(m.Skeleton2D, name) for name, _ in SKELETON2D], dtype=np.intp)

    # ---- publishers per id ----
    @property
    def tracked_bodies(self) -> list[str]:
        return sorted(self._bodies)

    @property
    def tracked_faces(self) -> list[str]:
        return sorted(self._faces)

    def _body_publishers(self, ident: str) -> dict[str, object]:
        pubs = self._bodies.get(ident)
        if pubs is None:
            m, q = self._msgs, self._per_id_qos
            pubs = {
                "roi": self.node.create_publisher(m.NormalizedRegionOfInterest2D, body_topic(ident, "roi", self.root), q),
                "skeleton2d": self.node.create_publisher(m.Skeleton2D, body_topic(ident, "skeleton2d", self.root), q),
                "joint_states": self.node.create_publisher(JointState, body_topic(ident, "joint_states", self.root), q),
            }
            if self.publish_cropped:
                pubs["cropped"] = self.node.create_publisher(Image, body_topic(ident, "cropped", self.root), q)
            self._bodies[ident] = pubs
        return pubs

    def _face_publishers(self, ident: str) -> dict[str, object]:
        pubs = self._faces.get(ident)
        if pubs is None:
            q = self._per_id_qos
            pubs = {"roi": self.node.create_publisher(self._msgs.NormalizedRegionOfInterest2D,
                                                      face_topic(ident, "roi", self.root), q)}
            if self.publish_cropped:
                pubs["cropped"] = self.node.create_publisher(Image, face_topic(ident, "cropped", self.root), q)
            self._faces[ident] = pubs
        return pubs

    def _drop(self, table: dict[str, dict[str, object]], keep: set[str]) -> None:
        for ident in [i for i in table if i not in keep]:
            for pub in table.pop(ident).values():
                self.node.destroy_publisher(pub)

    # ---- messages ----
    def roi_message(self, header, box_xyxy, width: int, height: int, confidence: float):
        xmin, ymin, xmax, ymax = _xyxy_normalised(box_xyxy, width, height)
        return self._msgs.NormalizedRegionOfInterest2D(header=header, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax,
                                                       c=float(confidence))

    def skeleton2d_message(self, header, result, width: int, height: int):
        """Skeleton2D of the person's projected joints, normalised by the image size (c: 1 inside, 0 outside)."""
        uv = np.asarray(result.joints_img, dtype=np.float64)[_SKELETON_JOINTS]
        xy = uv / np.array([float(width), float(height)])
        inside = np.all(np.isfinite(xy), axis=1) & np.all((xy >= 0.0) & (xy <= 1.0), axis=1)
        xy = np.clip(np.nan_to_num(xy, nan=0.0), 0.0, 1.0)
        msg = self._msgs.Skeleton2D(header=header)
        points = list(msg.skeleton)
        for k, (x, y), c in zip(self._skeleton_index.tolist(), xy.tolist(), inside.tolist()):
            points[k] = self._msgs.NormalizedPointOfInterest2D(x=x, y=y, c=1.0 if c else 0.0)
        msg.skeleton = points
        return msg

    @staticmethod
    def joint_state_message(header, result, ident: str) -> JointState:
        return JointState(header=header, name=rep155.urdf_joint_names(ident),
                          position=rep155.urdf_joint_positions(result).tolist())

    # ---- per frame ----
    def publish(self, header, results: Sequence, image_rgb: np.ndarray | None, width: int, height: int) -> None:
        """One frame: tracked lists, per-id topics of the people in ``results`` (PersonResults of
        the image ``image_rgb``, H x W x 3 uint8 RGB, or None for no crops; ``width`` x ``height``
        the image size the boxes refer to), matches; publishers of ids absent here are destroyed."""
        width, height = int(width), int(height)
        if width <= 0 or height <= 0:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        crops = image_rgb is not None and self.publish_cropped
        if crops:
            image_rgb = np.asarray(image_rgb)
            if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
                raise ValueError(f"image_rgb must be H x W x 3 uint8, got {image_rgb.dtype} {image_rgb.shape}")
        bodies, faces, matches = [], [], []
        for result in results:
            track_id = int(result.track_id)
            if track_id < 0:
                continue
            ident = self.body_id_fn(track_id)
            if ident in bodies:
                continue
            bodies.append(ident)
            pubs = _listened(self._body_publishers(ident))
            box = input_box_xyxy(result)
            if "roi" in pubs:
                pubs["roi"].publish(self.roi_message(header, box, width, height, result.score))
            if "skeleton2d" in pubs:
                pubs["skeleton2d"].publish(self.skeleton2d_message(header, result, width, height))
            if "joint_states" in pubs:
                pubs["joint_states"].publish(self.joint_state_message(header, result, ident))
            if crops and "cropped" in pubs:
                crop = _crop(image_rgb, box)
                if crop is not None:
                    pubs["cropped"].publish(numpy_to_image(crop, "rgb8", header))
            if rep155.face_visible(result) and face_in_image(result, width, height):
                fident = self.face_id_fn(track_id)
                faces.append(fident)
                fpubs = _listened(self._face_publishers(fident))
                if "roi" in fpubs:
                    fpubs["roi"].publish(self.roi_message(header, result.face_bbox, width, height, 1.0))
                if crops and "cropped" in fpubs:
                    crop = _crop(image_rgb, result.face_bbox)
                    if crop is not None:
                        fpubs["cropped"].publish(numpy_to_image(crop, "rgb8", header))
                matches.append((ident, fident))
        self._drop(self._bodies, set(bodies))
        self._drop(self._faces, set(faces))
        m = self._msgs
        self._bodies_tracked.publish(m.IdsList(header=header, ids=bodies))
        self._faces_tracked.publish(m.IdsList(header=header, ids=faces))
        for body, face in matches:
            self._matches.publish(m.IdsMatch(id1=body, id1_type=m.IdsMatch.BODY, id2=face, id2_type=m.IdsMatch.FACE,
                                             confidence=1.0))

    def close(self) -> None:
        """Destroy every publisher (per-id and global). The object is unusable afterwards."""
        self._drop(self._bodies, set())
        self._drop(self._faces, set())
        for pub in (self._bodies_tracked, self._faces_tracked, self._matches):
            if pub is not None:
                self.node.destroy_publisher(pub)
        self._bodies_tracked = self._faces_tracked = self._matches = None
