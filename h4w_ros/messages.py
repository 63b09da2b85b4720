"""PersonResult -> ROS messages (WholeBodyMesh, TF transforms, RViz markers). Conversion only.

Built for a short critical path: rotations go through one scipy call per message, relative TF
transforms are computed for all frames at once with numpy, arrays reach float32[] fields as
``array.array('f')`` (which rclpy takes without looking at each element), and message objects are
filled from plain Python lists, never from numpy scalars one by one.
"""
from __future__ import annotations

import array
import functools
from collections.abc import Callable, Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from builtin_interfaces.msg import Time as TimeMsg
from geometry_msgs.msg import Point, Pose, Quaternion, Transform, TransformStamped, Vector3
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

# skeleton rows a WholeBodyMesh needs rotations of: the pelvis (root_pose), then hand_orientations
_MESSAGE_ROTATION_JOINTS = np.array((PELVIS, *HAND_ORIENTATION_JOINTS), dtype=np.intp)
# TF tree as index arrays: frame k (after body_<key>) is _TF_CHILDREN[k] under _TF_PARENTS[k]
_TF_CHILDREN = np.array([child for child, _ in FRAME_TREE], dtype=np.intp)
_TF_PARENTS = np.array([parent for _, parent in FRAME_TREE], dtype=np.intp)


def _scipy_takes_assume_valid() -> bool:
    try:
        Rotation.from_matrix(np.eye(3), assume_valid=True)
    except TypeError:
        return False
    return True


_ASSUME_VALID = {"assume_valid": True} if _scipy_takes_assume_valid() else {}
_EYE3 = np.eye(3)


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """(K, 3, 3) -> (K, 4) x y z w: Rotation.from_matrix(rotations).as_quat(), in one scipy call.

    scipy replaces a matrix that is not orthogonal to 1e-12 (float32 rotations are not: ~1e-7) by
    the nearest rotation, its polar factor, through an SVD, which costs ~0.4 ms for 33 matrices.
    One Newton-Schulz step of the polar decomposition, X (3I - X^T X) / 2, reaches the same polar
    factor to ~1e-14 from there at a tenth of the cost; a matrix it does not bring to a proper
    rotation (far from orthogonal, reflected, not finite) goes to scipy as it is. The choice is
    made per matrix, so a matrix's quaternion does not depend on the others converted with it.
    """
    matrices = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    polished = 0.5 * np.matmul(matrices, 3.0 * _EYE3 - np.matmul(matrices.transpose(0, 2, 1), matrices))
    error = np.abs(np.matmul(polished, polished.transpose(0, 2, 1)) - _EYE3).max(axis=(1, 2), initial=0.0)
    proper = (error < 1e-10) & (np.linalg.det(polished) > 0.0)  # False where not finite
    if proper.all():
        return Rotation.from_matrix(polished, **_ASSUME_VALID).as_quat()
    quats = np.empty((len(matrices), 4))
    if proper.any():
        quats[proper] = Rotation.from_matrix(polished[proper], **_ASSUME_VALID).as_quat()
    quats[~proper] = Rotation.from_matrix(matrices[~proper]).as_quat()
    return quats


def _float32(values) -> np.ndarray:
    """A fresh float32 array: what a fixed-size float32[N] field stores (and takes without a copy)."""
    return np.array(values, dtype=np.float32)


def _float32_sequence(values: np.ndarray) -> array.array:
    """An unbounded float32[] field's value: array.array('f') is taken as is, where a numpy array or
    a list would be converted (and, with field checks on, checked) element by element."""
    out = array.array("f")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).reshape(-1).tobytes())
    return out


def _xyxy(bbox_xywh: np.ndarray) -> np.ndarray:
    x, y, w, h = np.asarray(bbox_xywh, dtype=np.float64).reshape(4)
    return _float32((x, y, x + w, y + h))


def _verified(direct: Callable, public: Callable, probe: tuple) -> Callable:
    """``direct`` when it builds the same messages as ``public`` from ``probe`` (equal and with the
    same repr), else ``public``: a message layout of another ROS 2 version falls back safely."""
    try:
        fast, slow = direct(*probe), public(*probe)
        if fast == slow and [repr(m) for m in fast] == [repr(m) for m in slow]:
            return direct
    except Exception:  # any surprise: the public constructors
        pass
    return public


def _slot_layout(cls: type, fields: set[str]) -> tuple[Callable, object] | None:
    """(``cls.__new__``, the ``_check_fields`` value its constructor sets, or None) when ``cls`` keeps
    its fields in exactly the slots ``fields`` (``{"_x", "_y", "_z"}``; and ``_check_fields`` on newer
    ROS 2); else None, and only the constructor is safe."""
    slots = set(getattr(cls, "__slots__", ()))
    if not fields <= slots <= fields | {"_check_fields"}:
        return None
    return cls.__new__, (cls()._check_fields if "_check_fields" in slots else None)


def _point_builder() -> Callable[[list[float], list[float], list[float]], list[Point]]:
    """A function (xs, ys, zs) lists of Python floats -> list of geometry_msgs/Point.

    The generated Point keeps its fields in the slots ``_x _y _z`` (and ``_check_fields`` on newer
    ROS 2), and its constructor spends most of its ~1.5 us on keyword handling and one property
    setter per field. Filling the slots directly is ~8x faster, which matters for a mesh marker's
    10k vertices. Used only when the class has exactly that layout and the result compares equal
    to a constructor-built Point; otherwise the constructor is used.
    """

    def public(xs, ys, zs):
        return [Point(x=x, y=y, z=z) for x, y, z in zip(xs, ys, zs)]

    layout = _slot_layout(Point, {"_x", "_y", "_z"})
    if layout is None:
        return public
    new, check = layout

    def direct(xs, ys, zs):
        out = []
        append = out.append
        for x, y, z in zip(xs, ys, zs):
            p = new(Point)
            if check is not None:
                p._check_fields = check
            p._x = x
            p._y = y
            p._z = z
            append(p)
        return out

    return _verified(direct, public, ([1.5, 0.0], [-2.25, 7.0], [3.0e-3, -1.0e6]))


def _quaternion_builder() -> Callable[[list[list[float]]], list[Quaternion]]:
    """A function [[x, y, z, w], ...] -> list of geometry_msgs/Quaternion, filling the slots as
    _point_builder does (a person's 34 hand orientations: 6 us instead of 31 us)."""

    def public(quats):
        return [Quaternion(x=x, y=y, z=z, w=w) for x, y, z, w in quats]

    layout = _slot_layout(Quaternion, {"_x", "_y", "_z", "_w"})
    if layout is None:
        return public
    new, check = layout

    def direct(quats):
        out = []
        append = out.append
        for x, y, z, w in quats:
            q = new(Quaternion)
            if check is not None:
                q._check_fields = check
            q._x, q._y, q._z, q._w = x, y, z, w
            append(q)
        return out

    return _verified(direct, public, ([[0.0, 0.0, 0.0, 1.0], [0.5, -0.5, 0.5, 0.5]],))


_build_points = _point_builder()
_build_quaternions = _quaternion_builder()


def points_from_array(xyz: np.ndarray) -> list[Point]:
    """(N, 3) -> N Points (float32 values become the same doubles as through float())."""
    xs, ys, zs = np.asarray(xyz).reshape(-1, 3).T.tolist()
    return _build_points(xs, ys, zs)


def person_message(result: PersonResult, with_mesh: bool = True) -> WholeBodyMesh:
    """One WholeBodyMesh; `bbox` is the person box given to the network, `placement_box` the box
    the body was placed with."""
    msg = WholeBodyMesh()
    msg.track_id = int(result.track_id)
    msg.score = float(result.score)
    msg.bbox = _xyxy(result.track.input_box)
    msg.placement_box = _xyxy(result.bbox_xywh)
    msg.depth_scale = float(result.track.depth_scale or 1.0)
    msg.lhand_bbox = _float32(result.lhand_bbox)
    msg.rhand_bbox = _float32(result.rhand_bbox)
    msg.face_bbox = _float32(result.face_bbox)
    params = result.params
    for name in PARAM_FIELDS:
        setattr(msg, name, _float32(getattr(params, name)))
    quats = _quaternions(np.asarray(result.skeleton_rotations)[_MESSAGE_ROTATION_JOINTS]).tolist()
    (px, py, pz), (qx, qy, qz, qw) = np.asarray(result.skeleton_joints[PELVIS], dtype=np.float64).tolist(), quats[0]
    msg.root_pose = Pose(position=Point(x=px, y=py, z=pz), orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))
    if with_mesh:
        msg.vertices = _float32_sequence(result.vertices)
    msg.joints = points_from_array(result.joints)
    msg.hand_orientations = _build_quaternions(quats[1:])
    return msg


def array_message(header: Header, people: Sequence[WholeBodyMesh]) -> WholeBodyMeshArray:
    msg = WholeBodyMeshArray()
    msg.header = header
    msg.people = list(people)
    return msg


@functools.lru_cache(maxsize=1024)
def _tf_frame_names(key: str, prefix: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """<prefix>body_<key>, and (parent frame, child frame) names of FRAME_TREE for one person key."""
    return joint_frame(PELVIS, key, prefix), tuple((joint_frame(parent, key, prefix), joint_frame(child, key, prefix)) for child, parent in FRAME_TREE)


def person_transforms(result: PersonResult, header: Header, key: str, prefix: str = "") -> list[TransformStamped]:
    """<prefix>body_<key> under the camera frame, then wrists and finger joints (FRAME_TREE)."""
    positions = np.asarray(result.skeleton_joints, dtype=np.float64)
    rotations = np.asarray(result.skeleton_rotations, dtype=np.float64)
    parent_rot_t = rotations[_TF_PARENTS].transpose(0, 2, 1)
    relative_rot = np.matmul(parent_rot_t, rotations[_TF_CHILDREN])
    relative_pos = np.matmul(parent_rot_t, (positions[_TF_CHILDREN] - positions[_TF_PARENTS])[:, :, None])[:, :, 0]
    body, tree = _tf_frame_names(key, prefix)
    return stamped_transforms(header.stamp, ((header.frame_id, body), *tree),
                              np.concatenate([positions[PELVIS][None], relative_pos]),
                              np.concatenate([rotations[PELVIS][None], relative_rot]))


def _public_transforms(stamp, names, translations, quats) -> list[TransformStamped]:
    out = []
    for (parent_frame, child_frame), (x, y, z), (qx, qy, qz, qw) in zip(names, translations, quats):
        t = TransformStamped()
        t.header.stamp = stamp
        t.header.frame_id = parent_frame
        t.child_frame_id = child_frame
        translation, rotation = t.transform.translation, t.transform.rotation
        translation.x, translation.y, translation.z = x, y, z
        rotation.x, rotation.y, rotation.z, rotation.w = qx, qy, qz, qw
        out.append(t)
    return out


_TRANSFORM_LAYOUT = {  # class -> the slots the direct builder fills (besides _check_fields)
    TransformStamped: {"_header", "_child_frame_id", "_transform"},
    Header: {"_stamp", "_frame_id"},
    Transform: {"_translation", "_rotation"},
    Vector3: {"_x", "_y", "_z"},
    Quaternion: {"_x", "_y", "_z", "_w"},
}


def _transform_builder() -> Callable[..., list[TransformStamped]]:
    """A function (stamp, names, translations, quaternions) -> TransformStamped list, as
    _public_transforms builds them, filling the message slots directly (as _point_builder does for
    Points): each constructor runs keyword handling and builds default sub-messages that are then
    replaced, ~20 us per transform, where a person has some 50. Used only when every class has the
    expected slots and the results compare equal to _public_transforms'."""
    layouts = {cls: _slot_layout(cls, fields) for cls, fields in _TRANSFORM_LAYOUT.items()}
    if None in layouts.values():
        return _public_transforms
    checks = {cls: check for cls, (_, check) in layouts.items()}
    if any(checks.values()):  # ROS_PYTHON_CHECK_FIELDS: the constructors check every field, so use them
        return _public_transforms
    new = object.__new__
    c_stamped, c_header, c_transform, c_vector, c_quat = (checks[c] for c in _TRANSFORM_LAYOUT)

    def direct(stamp, names, translations, quats):
        out = []
        append = out.append
        for (parent_frame, child_frame), (x, y, z), (qx, qy, qz, qw) in zip(names, translations, quats):
            header = new(Header)
            header._stamp, header._frame_id = stamp, parent_frame
            vector = new(Vector3)
            vector._x, vector._y, vector._z = x, y, z
            quat = new(Quaternion)
            quat._x, quat._y, quat._z, quat._w = qx, qy, qz, qw
            transform = new(Transform)
            transform._translation, transform._rotation = vector, quat
            t = new(TransformStamped)
            t._header, t._child_frame_id, t._transform = header, child_frame, transform
            if c_stamped is not None:
                header._check_fields, vector._check_fields, quat._check_fields = c_header, c_vector, c_quat
                transform._check_fields, t._check_fields = c_transform, c_stamped
            append(t)
        return out

    probe = (TimeMsg(sec=3, nanosec=7), [("cam", "body_1"), ("body_1", "l_wrist_1")],
             [(1.5, -2.0, 3.0e-3), (0.0, 7.0, -1.0e6)], [(0.0, 0.0, 0.0, 1.0), (0.5, -0.5, 0.5, 0.5)])
    return _verified(direct, _public_transforms, probe)


_build_transforms = _transform_builder()


def stamped_transforms(stamp, names: Sequence[tuple[str, str]], translations: np.ndarray, rotations: np.ndarray) -> list[TransformStamped]:
    """TransformStamped per (parent frame, child frame) name pair, from (K, 3) translations and
    (K, 3, 3) rotations (one quaternion conversion for all of them)."""
    if not len(names) == len(translations) == len(rotations):
        raise ValueError(f"{len(names)} frame name pairs for {len(translations)} translations and {len(rotations)} rotations")
    quats = _quaternions(rotations).tolist()
    return _build_transforms(stamp, names, np.asarray(translations, dtype=np.float64).tolist(), quats)


def _colour(index: int, alpha: float) -> ColorRGBA:
    r, g, b = person_colour(index)
    return ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=alpha)


def marker_id(key: str) -> int:
    """A stable non-negative marker id per person key (track ids as they are; p<i> offset)."""
    return int(key[1:]) + 1_000_000 if key.startswith("p") else int(key)


def _marker_shells(header: Header, key: str, colour_index: int, lifetime_s: float) -> tuple[Marker, Marker]:
    """The mesh (TRIANGLE_LIST) and skeleton (LINE_LIST) markers of one person, points not set."""
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    mesh = Marker(header=header, ns=MESH_NS, id=marker_id(key), type=Marker.TRIANGLE_LIST, action=Marker.ADD)
    mesh.pose.orientation.w = 1.0
    mesh.scale.x = mesh.scale.y = mesh.scale.z = 1.0
    mesh.color = _colour(colour_index, 0.8)
    mesh.lifetime = lifetime
    bones = Marker(header=header, ns=SKELETON_NS, id=marker_id(key), type=Marker.LINE_LIST, action=Marker.ADD)
    bones.pose.orientation.w = 1.0
    bones.scale.x = 0.01  # line width, metres
    bones.color = _colour(colour_index, 1.0)
    bones.lifetime = lifetime
    return mesh, bones


def _bone_ends(parents: np.ndarray) -> np.ndarray:
    """Skeleton rows of a LINE_LIST: parent, child per bone."""
    parents = np.asarray(parents, dtype=np.intp).reshape(-1)
    return np.stack([parents[1:], np.arange(1, parents.size)], axis=1).reshape(-1)


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
    """Mesh as TRIANGLE_LIST and skeleton as LINE_LIST, one colour per person, with Point objects
    (person_marker_points gives the same markers with their points as arrays)."""
    parts = person_marker_points(result, header, key, faces, parents, colour_index, lifetime_s, face_stride)
    for marker, points in parts:
        marker.points = points_from_array(points)
    return [marker for marker, _ in parts]


def person_marker_points(
    result: PersonResult,
    header: Header,
    key: str,
    faces: np.ndarray,
    parents: np.ndarray,
    colour_index: int,
    lifetime_s: float,
    face_stride: int = 1,
) -> list[tuple[Marker, np.ndarray]]:
    """A person's mesh (TRIANGLE_LIST) and skeleton (LINE_LIST) markers with their points as (K, 3)
    arrays (the markers' own points left empty): for h4w_ros.raw_points, which serializes them
    without Point objects."""
    mesh, bones = _marker_shells(header, key, colour_index, lifetime_s)
    corners = np.asarray(faces)[::face_stride].reshape(-1)
    return [(mesh, np.asarray(result.vertices)[corners]), (bones, np.asarray(result.skeleton_joints)[_bone_ends(parents)])]


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
