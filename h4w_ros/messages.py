"""PersonResult -> ROS messages (WholeBodyMesh, TF transforms, RViz markers). Conversion only."""
from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, TransformStamped
from scipy.spatial.transform import Rotation
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from h4w_core.inference.estimator import PARAM_FIELDS
from h4w_core.inference.results import PersonResult
from h4w_core.io.render import person_colour
from h4w_ros.frames import FRAME_TREE, HAND_ORIENTATION_JOINTS, PELVIS, joint_frame
from h4w_ros.msg import WholeBodyMesh, WholeBodyMeshArray

MESH_NS = "h4w_mesh"
SKELETON_NS = "h4w_skeleton"


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """(K, 3, 3) -> (K, 4) x y z w."""
    return Rotation.from_matrix(np.asarray(rotations, dtype=np.float64)).as_quat()


def _xyxy(bbox_xywh: np.ndarray) -> list[float]:
    x, y, w, h = (float(v) for v in bbox_xywh)
    return [x, y, x + w, y + h]


def person_message(result: PersonResult, with_mesh: bool = True) -> WholeBodyMesh:
    """One WholeBodyMesh; `bbox` is the person box given to the network, `placement_box` the box
    the body was placed with."""
    msg = WholeBodyMesh()
    msg.track_id = int(result.track_id)
    msg.score = float(result.score)
    msg.bbox = _xyxy(result.track.input_box)
    msg.placement_box = _xyxy(result.bbox_xywh)
    msg.depth_scale = float(result.track.depth_scale or 1.0)
    msg.lhand_bbox = [float(v) for v in result.lhand_bbox]
    msg.rhand_bbox = [float(v) for v in result.rhand_bbox]
    msg.face_bbox = [float(v) for v in result.face_bbox]
    for name in PARAM_FIELDS:
        setattr(msg, name, np.asarray(getattr(result.params, name), dtype=np.float32))
    pelvis = result.skeleton_joints[PELVIS]
    qx, qy, qz, qw = _quaternions(result.skeleton_rotations[PELVIS : PELVIS + 1])[0]
    msg.root_pose = Pose()
    msg.root_pose.position = Point(x=float(pelvis[0]), y=float(pelvis[1]), z=float(pelvis[2]))
    msg.root_pose.orientation = Quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw))
    if with_mesh:
        msg.vertices = np.ascontiguousarray(result.vertices, dtype=np.float32).reshape(-1)
    msg.joints = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in result.joints]
    quats = _quaternions(result.skeleton_rotations[list(HAND_ORIENTATION_JOINTS)])
    msg.hand_orientations = [Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])) for q in quats]
    return msg


def array_message(header: Header, people: Sequence[WholeBodyMesh]) -> WholeBodyMeshArray:
    msg = WholeBodyMeshArray()
    msg.header = header
    msg.people = list(people)
    return msg


def person_transforms(result: PersonResult, header: Header, key: str) -> list[TransformStamped]:
    """body_<key> under the camera frame, then wrists and finger joints (FRAME_TREE)."""
    positions = np.asarray(result.skeleton_joints, dtype=np.float64)
    rotations = np.asarray(result.skeleton_rotations, dtype=np.float64)

    def make(child: int, parent: int | None) -> TransformStamped:
        t = TransformStamped()
        t.header.stamp = header.stamp
        if parent is None:
            t.header.frame_id = header.frame_id
            rot, pos = rotations[child], positions[child]
        else:
            t.header.frame_id = joint_frame(parent, key)
            rot = rotations[parent].T @ rotations[child]
            pos = rotations[parent].T @ (positions[child] - positions[parent])
        t.child_frame_id = joint_frame(child, key)
        t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (float(v) for v in pos)
        qx, qy, qz, qw = _quaternions(rot[None])[0]
        t.transform.rotation = Quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw))
        return t

    return [make(PELVIS, None)] + [make(child, parent) for child, parent in FRAME_TREE]


def _colour(index: int, alpha: float) -> ColorRGBA:
    r, g, b = person_colour(index)
    return ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=alpha)


def marker_id(key: str) -> int:
    """A stable non-negative marker id per person key (track ids as they are; p<i> offset)."""
    return int(key[1:]) + 1_000_000 if key.startswith("p") else int(key)


@functools.lru_cache(maxsize=4)
def _corner_list(faces_bytes: bytes, stride: int) -> tuple[int, ...]:
    faces = np.frombuffer(faces_bytes, dtype=np.int64).reshape(-1, 3)
    return tuple(faces[::stride].reshape(-1).tolist())


def _corner_indices(faces: np.ndarray, stride: int) -> tuple[int, ...]:
    """Triangle corner vertex indices as a cached tuple (the faces are constant)."""
    return _corner_list(np.ascontiguousarray(faces, dtype=np.int64).tobytes(), stride)


def person_markers(
    result: PersonResult,
    header: Header,
    key: str,
    faces: np.ndarray,
    parents: np.ndarray,
    colour_index: int,
    lifetime_s: float,
    face_stride: int = 1,
) -> list[Marker]:
    """Mesh as TRIANGLE_LIST and skeleton as LINE_LIST, one colour per person."""
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    mesh = Marker(header=header, ns=MESH_NS, id=marker_id(key), type=Marker.TRIANGLE_LIST, action=Marker.ADD)
    mesh.pose.orientation.w = 1.0
    mesh.scale.x = mesh.scale.y = mesh.scale.z = 1.0
    mesh.color = _colour(colour_index, 0.8)
    mesh.lifetime = lifetime
    # one Point per vertex, shared by the triangles that use it (6x fewer objects to build)
    vertex_points = [Point(x=x, y=y, z=z) for x, y, z in np.asarray(result.vertices, dtype=np.float64).tolist()]
    mesh.points = [vertex_points[i] for i in _corner_indices(faces, face_stride)]
    bones = Marker(header=header, ns=SKELETON_NS, id=marker_id(key), type=Marker.LINE_LIST, action=Marker.ADD)
    bones.pose.orientation.w = 1.0
    bones.scale.x = 0.01  # line width, metres
    bones.color = _colour(colour_index, 1.0)
    bones.lifetime = lifetime
    joints = np.asarray(result.skeleton_joints, dtype=np.float64)
    for child in range(1, len(parents)):
        for j in (int(parents[child]), child):
            bones.points.append(Point(x=float(joints[j, 0]), y=float(joints[j, 1]), z=float(joints[j, 2])))
    return [mesh, bones]


def delete_markers(header: Header, keys: Sequence[str]) -> list[Marker]:
    """DELETE markers of people no longer seen."""
    out = []
    for key in keys:
        for ns in (MESH_NS, SKELETON_NS):
            out.append(Marker(header=header, ns=ns, id=marker_id(key), action=Marker.DELETE))
    return out


def marker_array(markers: Sequence[Marker]) -> MarkerArray:
    msg = MarkerArray()
    msg.markers = list(markers)
    return msg
