"""h4w_ros.messages against a plain per-element reference (the module's earlier code), field by field.

The module builds its messages the fast way (one rotation call per message, TF relative transforms
for all frames at once, float32[] fields as array.array, Points from Python lists); the reference
below does everything one element at a time. Both must give the same messages to 1e-6. No timings
are asserted: the cost checks count Python line events, which do not depend on the machine.
"""
from __future__ import annotations

import array
import dataclasses
import functools
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ros_support import require_rclpy

require_rclpy()

import cv2  # noqa: E402
from builtin_interfaces.msg import Duration  # noqa: E402
from builtin_interfaces.msg import Time as TimeMsg  # noqa: E402
from geometry_msgs.msg import Point, Pose, Quaternion, TransformStamped  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from std_msgs.msg import ColorRGBA, Header  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

import h4w_core.data  # noqa: E402
from h4w_core.inference.estimator import PARAM_FIELDS  # noqa: E402
from h4w_core.io.render import person_colour  # noqa: E402
from h4w_ros import messages  # noqa: E402
from h4w_ros.frames import FRAME_TREE, HAND_ORIENTATION_JOINTS, PELVIS, joint_frame  # noqa: E402
from h4w_ros.msg import WholeBodyMesh, WholeBodyMeshArray  # noqa: E402

TOL = 1e-6
REPO = Path(__file__).resolve().parents[2]


# ---- reference: the straightforward per-element implementation -----------------------------------
def ref_quaternions(rotations):
    return Rotation.from_matrix(np.asarray(rotations, dtype=np.float64)).as_quat()


def ref_xyxy(bbox_xywh):
    x, y, w, h = (float(v) for v in bbox_xywh)
    return [x, y, x + w, y + h]


def ref_person_message(result, with_mesh=True):
    msg = WholeBodyMesh()
    msg.track_id = int(result.track_id)
    msg.score = float(result.score)
    msg.bbox = ref_xyxy(result.track.input_box)
    msg.placement_box = ref_xyxy(result.bbox_xywh)
    msg.depth_scale = float(result.track.depth_scale or 1.0)
    msg.lhand_bbox = [float(v) for v in result.lhand_bbox]
    msg.rhand_bbox = [float(v) for v in result.rhand_bbox]
    msg.face_bbox = [float(v) for v in result.face_bbox]
    for name in PARAM_FIELDS:
        setattr(msg, name, np.asarray(getattr(result.params, name), dtype=np.float32))
    pelvis = result.skeleton_joints[PELVIS]
    qx, qy, qz, qw = ref_quaternions(result.skeleton_rotations[PELVIS : PELVIS + 1])[0]
    msg.root_pose = Pose()
    msg.root_pose.position = Point(x=float(pelvis[0]), y=float(pelvis[1]), z=float(pelvis[2]))
    msg.root_pose.orientation = Quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw))
    if with_mesh:
        msg.vertices = np.ascontiguousarray(result.vertices, dtype=np.float32).reshape(-1)
    msg.joints = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in result.joints]
    quats = ref_quaternions(result.skeleton_rotations[list(HAND_ORIENTATION_JOINTS)])
    msg.hand_orientations = [Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])) for q in quats]
    return msg


def ref_array_message(header, people):
    msg = WholeBodyMeshArray()
    msg.header = header
    msg.people = list(people)
    return msg


def ref_person_transforms(result, header, key):
    positions = np.asarray(result.skeleton_joints, dtype=np.float64)
    rotations = np.asarray(result.skeleton_rotations, dtype=np.float64)

    def make(child, parent):
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
        qx, qy, qz, qw = ref_quaternions(rot[None])[0]
        t.transform.rotation = Quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw))
        return t

    return [make(PELVIS, None)] + [make(child, parent) for child, parent in FRAME_TREE]


def ref_colour(index, alpha):
    r, g, b = person_colour(index)
    return ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=alpha)


def ref_marker_id(key):
    return int(key[1:]) + 1_000_000 if key.startswith("p") else int(key)


@functools.lru_cache(maxsize=4)
def ref_corner_list(faces_bytes, stride):
    faces = np.frombuffer(faces_bytes, dtype=np.int64).reshape(-1, 3)
    return tuple(faces[::stride].reshape(-1).tolist())


def ref_person_markers(result, header, key, faces, parents, colour_index, lifetime_s, face_stride=1):
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    mesh = Marker(header=header, ns=messages.MESH_NS, id=ref_marker_id(key), type=Marker.TRIANGLE_LIST, action=Marker.ADD)
    mesh.pose.orientation.w = 1.0
    mesh.scale.x = mesh.scale.y = mesh.scale.z = 1.0
    mesh.color = ref_colour(colour_index, 0.8)
    mesh.lifetime = lifetime
    vertex_points = [Point(x=x, y=y, z=z) for x, y, z in np.asarray(result.vertices, dtype=np.float64).tolist()]
    corners = ref_corner_list(np.ascontiguousarray(faces, dtype=np.int64).tobytes(), face_stride)
    mesh.points = [vertex_points[i] for i in corners]
    bones = Marker(header=header, ns=messages.SKELETON_NS, id=ref_marker_id(key), type=Marker.LINE_LIST, action=Marker.ADD)
    bones.pose.orientation.w = 1.0
    bones.scale.x = 0.01
    bones.color = ref_colour(colour_index, 1.0)
    bones.lifetime = lifetime
    joints = np.asarray(result.skeleton_joints, dtype=np.float64)
    for child in range(1, len(parents)):
        for j in (int(parents[child]), child):
            bones.points.append(Point(x=float(joints[j, 0]), y=float(joints[j, 1]), z=float(joints[j, 2])))
    return [mesh, bones]


def ref_delete_markers(header, keys):
    out = []
    for key in keys:
        for ns in (messages.MESH_NS, messages.SKELETON_NS):
            out.append(Marker(header=header, ns=ns, id=ref_marker_id(key), action=Marker.DELETE))
    return out


def ref_marker_array(markers):
    msg = MarkerArray()
    msg.markers = list(markers)
    return msg


# ---- field-by-field comparison ----------------------------------------------------------------------
def _is_message(value) -> bool:
    return hasattr(type(value), "get_fields_and_field_types")


def _flat_float_fields(cls) -> list[str] | None:
    """Field names of a message class whose fields are all float/double, else None."""
    types = cls.get_fields_and_field_types()
    return list(types) if all(t in ("float", "double") for t in types.values()) else None


def assert_same(got, want, path: str = "msg") -> None:
    """Same message types all the way down, equal strings and integers, floats within TOL."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
    if _is_message(want):
        for name in want.get_fields_and_field_types():
            assert_same(getattr(got, name), getattr(want, name), f"{path}.{name}")
    elif isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and got.shape == want.shape, f"{path}: {got.dtype}{got.shape} != {want.dtype}{want.shape}"
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=0, atol=TOL, err_msg=path)
    elif isinstance(want, array.array):
        assert got.typecode == want.typecode and len(got) == len(want), f"{path}: {got.typecode}[{len(got)}] != {want.typecode}[{len(want)}]"
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=0, atol=TOL, err_msg=path)
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), f"{path}: {len(got)} != {len(want)} entries"
        fields = _flat_float_fields(type(want[0])) if want and _is_message(want[0]) else None
        if fields and all(type(v) is type(want[0]) for v in (*got, *want)):  # Points, Quaternions: as arrays
            g = np.array([[getattr(v, f) for f in fields] for v in got], dtype=np.float64)
            w = np.array([[getattr(v, f) for f in fields] for v in want], dtype=np.float64)
            np.testing.assert_allclose(g, w, rtol=0, atol=TOL, err_msg=f"{path}[*].{fields}")
        else:
            for i, (g, w) in enumerate(zip(got, want)):
                assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert abs(got - want) <= TOL, f"{path}: {got} != {want}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


# ---- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def people(standin_estimator):
    """A real PersonResult from the stand-in estimator, and the same person tracked with a depth scale."""
    image = cv2.imread(str(h4w_core.data.SAMPLE_PHOTO))
    (result,) = standin_estimator.predict(image, [(20, 10, 360, 490)], "bgr")
    return [result, result.with_track(track_id=7, depth_scale=1.08, score=0.625)]


@pytest.fixture
def header():
    return Header(stamp=TimeMsg(sec=1_700_000_000, nanosec=123_456_789), frame_id="camera_optical_frame")


# ---- same messages as the reference ------------------------------------------------------------------
@pytest.mark.parametrize("with_mesh", [True, False])
def test_person_message_matches_reference(people, with_mesh):
    for result in people:
        got = messages.person_message(result, with_mesh)
        assert_same(got, ref_person_message(result, with_mesh))
        assert isinstance(got.vertices, array.array) and got.vertices.typecode == "f"
        assert len(got.vertices) == (result.vertices.size if with_mesh else 0)
        assert len(got.joints) == 137 and len(got.hand_orientations) == 32


def test_fixed_size_fields_are_fresh_writable_float32(people):
    msg = messages.person_message(people[0])
    for name in ("bbox", "placement_box", "lhand_bbox", "rhand_bbox", "face_bbox", *PARAM_FIELDS):
        value = getattr(msg, name)
        assert isinstance(value, np.ndarray) and value.dtype == np.float32 and value.flags.writeable, name
        if name in PARAM_FIELDS:
            assert not np.shares_memory(value, getattr(people[0].params, name)), name


def test_array_message_matches_reference_and_round_trips(people, header):
    people_msgs = [messages.person_message(r) for r in people]
    got = messages.array_message(header, people_msgs)
    assert_same(got, ref_array_message(header, [ref_person_message(r) for r in people]))
    # the serialiser takes what the fast path stores, and gives back the same message
    back = deserialize_message(serialize_message(got), WholeBodyMeshArray)
    assert_same(back, got)


@pytest.mark.parametrize("key", ["3", "p0"])
def test_person_transforms_match_reference(people, header, key):
    for result in people:
        got = messages.person_transforms(result, header, key)
        want = ref_person_transforms(result, header, key)
        assert [t.child_frame_id for t in got] == [t.child_frame_id for t in want]
        assert_same(got, want, "transforms")


@pytest.mark.parametrize("stride", [1, 3])
def test_person_markers_match_reference(people, header, standin_estimator, stride):
    faces, parents = standin_estimator.faces, standin_estimator.skeleton_parents
    for i, result in enumerate(people):
        key = str(result.track_id) if result.track_id >= 0 else f"p{i}"
        got = messages.person_markers(result, header, key, faces, parents, i, 0.75, stride)
        want = ref_person_markers(result, header, key, faces, parents, i, 0.75, stride)
        assert_same(got, want, "markers")
        assert len(got[0].points) == 3 * len(faces[::stride])


def test_person_markers_with_a_face_subset_and_changed_faces(people, header, standin_estimator):
    """A mesh using only some vertices (a coarse display mesh) and faces changed in place."""
    result, parents = people[0], standin_estimator.skeleton_parents
    faces = np.ascontiguousarray(standin_estimator.faces[::7][:400])
    assert_same(messages.person_markers(result, header, "5", faces, parents, 5, 2.0),
                ref_person_markers(result, header, "5", faces, parents, 5, 2.0), "subset")
    faces[:10] = faces[10:20]  # same array object, new content: the corner cache must notice
    ref_corner_list.cache_clear()
    assert_same(messages.person_markers(result, header, "5", faces, parents, 5, 2.0),
                ref_person_markers(result, header, "5", faces, parents, 5, 2.0), "changed in place")


def test_delete_markers_marker_array_and_ids_match_reference(header):
    keys = ["0", "12", "p3"]
    assert [messages.marker_id(k) for k in keys] == [ref_marker_id(k) for k in keys]
    got = messages.delete_markers(header, keys)
    assert_same(got, ref_delete_markers(header, keys), "delete")
    assert_same(messages.marker_array(got), ref_marker_array(ref_delete_markers(header, keys)), "array")


# ---- cost shape: nothing per person is O(vertices) in Python for TF and the mesh message -------------
def _python_lines(fn, *args) -> int:
    """How many Python trace events (in every frame, library code included) one call `fn(*args)` makes."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        count += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn(*args)
    finally:
        sys.settrace(previous)
    return count


class _NoMesh:
    """A PersonResult stand-in whose mesh cannot be read."""

    def __init__(self, result):
        self._result = result

    def __getattr__(self, name):
        if name in ("vertices", "mesh_cam"):
            raise AssertionError(f"TF building read result.{name}")
        return getattr(self._result, name)


def test_tf_does_not_touch_the_mesh(people, header):
    got = messages.person_transforms(_NoMesh(people[1]), header, "7")
    assert_same(got, ref_person_transforms(people[1], header, "7"), "transforms")


def test_python_work_does_not_grow_with_the_vertex_count(people, header):
    result = people[1]
    big = dataclasses.replace(result, vertices=np.tile(result.vertices, (8, 1)), mesh_cam=np.tile(result.mesh_cam, (8, 1)))
    assert len(messages.person_message(big).vertices) == 8 * result.vertices.size
    for name, build in [("person_transforms", lambda r: messages.person_transforms(r, header, "7")),
                        ("person_message", lambda r: messages.person_message(r, True))]:
        build(result), build(big)  # warm caches and lazy imports
        small_lines, big_lines = _python_lines(build, result), _python_lines(build, big)
        assert big_lines == small_lines, f"{name}: {small_lines} Python lines for {len(result.vertices)} vertices, {big_lines} for 8x"


# ---- with rclpy's field checks on (ROS_PYTHON_CHECK_FIELDS=1) the fast assignments are accepted ------
CHECKED = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    from geometry_msgs.msg import Point
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header
    from h4w_ros import messages

    assert Point()._check_fields, "ROS_PYTHON_CHECK_FIELDS=1 did not switch the checks on"
    data = pickle.load(open(sys.argv[1], "rb"))
    header = Header(frame_id="camera_optical_frame")
    people = [messages.person_message(r) for r in data["people"]]
    assert all(p._check_fields for p in people[0].joints)
    assert all(q._check_fields for q in people[0].hand_orientations)
    serialize_message(messages.array_message(header, people))
    for i, r in enumerate(data["people"]):
        for t in messages.person_transforms(r, header, str(i)):
            serialize_message(t)
        markers = messages.person_markers(r, header, str(i), data["faces"], data["parents"], i, 1.0)
        markers[0].points = list(markers[0].points)  # the setter checks every Point
        serialize_message(messages.marker_array(markers))
    print("checked ok")
    """
)


def test_messages_pass_rclpy_field_checks(people, standin_estimator, tmp_path):
    data = tmp_path / "people.pkl"
    data.write_bytes(pickle.dumps({"people": people, "faces": standin_estimator.faces, "parents": standin_estimator.skeleton_parents}))
    script = tmp_path / "checked.py"
    script.write_text(CHECKED)
    env = {**os.environ, "ROS_PYTHON_CHECK_FIELDS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script), str(data)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "checked ok" in done.stdout, done.stdout + done.stderr


def test_transforms_built_by_slots_equal_constructor_built_ones(monkeypatch):
    """stamped_transforms fills message slots directly where the classes have the expected layout
    (it does here); its transforms equal those built with the public constructors, field by field."""
    assert messages._build_transforms.__name__ == "direct"
    rng = np.random.default_rng(5)
    rotations = Rotation.from_rotvec(rng.normal(size=(6, 3))).as_matrix()
    names = [(f"parent_{i}", f"child_{i}") for i in range(6)]
    stamp = TimeMsg(sec=12, nanosec=345)
    translations = rng.normal(size=(6, 3))
    fast = messages.stamped_transforms(stamp, names, translations, rotations)
    monkeypatch.setattr(messages, "_build_transforms", messages._public_transforms)
    slow = messages.stamped_transforms(stamp, names, translations, rotations)
    assert fast == slow
    assert [serialize_message(t) for t in fast] == [serialize_message(t) for t in slow]


def test_an_unexpected_message_layout_gets_the_public_constructors(monkeypatch):
    layout = dict(messages._TRANSFORM_LAYOUT)
    layout[TransformStamped] = layout[TransformStamped] | {"_a_field_this_distro_added"}
    monkeypatch.setattr(messages, "_TRANSFORM_LAYOUT", layout)
    assert messages._transform_builder() is messages._public_transforms


def test_points_and_quaternions_built_by_slots_equal_constructor_built_ones():
    """A person's joints and hand orientations fill message slots directly where Point and
    Quaternion keep exactly the expected slots (they do here); a class with other slots is left to
    its constructor."""
    assert messages._build_points.__name__ == "direct" and messages._build_quaternions.__name__ == "direct"
    rng = np.random.default_rng(9)
    quats = Rotation.from_rotvec(rng.normal(size=(5, 3))).as_quat().tolist()
    built = messages._build_quaternions(quats)
    expected = [Quaternion(x=x, y=y, z=z, w=w) for x, y, z, w in quats]
    assert built == expected and [repr(q) for q in built] == [repr(q) for q in expected]
    assert [serialize_message(q) for q in built] == [serialize_message(q) for q in expected]
    xyz = rng.normal(size=(4, 3))
    assert messages.points_from_array(xyz) == [Point(x=x, y=y, z=z) for x, y, z in xyz.tolist()]
    assert messages._slot_layout(Quaternion, {"_x", "_y", "_z"}) is None  # a slot (_w) it would not fill


def test_a_quaternion_does_not_depend_on_the_rotations_converted_with_it():
    """A frame's TF rotations go through one conversion: one matrix far from orthogonal goes to
    scipy as it is, and leaves the others' quaternions exactly as they are without it."""
    rotations = Rotation.from_rotvec(np.random.default_rng(1).normal(size=(5, 3))).as_matrix().astype(np.float32)
    skewed = rotations.copy()
    skewed[2] *= 1.001
    others = [0, 1, 3, 4]
    assert np.array_equal(messages._quaternions(skewed)[others], messages._quaternions(rotations)[others])
    np.testing.assert_array_equal(messages._quaternions(skewed)[2], Rotation.from_matrix(skewed[2].astype(float)).as_quat())
