"""h4w_ros.rep155: REP 155 body/face/gaze frames, links, hands and URDF joint values on posed stand-in bodies.

The stand-in SMPL-X is posed standing upright in front of a camera that looks horizontally at it
(optical frame: x right, y down, z forward; the world's up is camera -y): global_orient pi about x
turns the SMPL-X rest frame (x left, y up, z forward of the body) so that the person faces the
camera; a further yaw about the camera's vertical turns the person away.
"""
from __future__ import annotations

import numpy as np
import pytest

from ros_support import require_rclpy

require_rclpy()
pytest.importorskip("smplx")

import torch  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from h4w_core.inference.results import PersonResult, SmplxParams, TrackInfo  # noqa: E402
from h4w_core.model.joint_tables import (  # noqa: E402
    LEFT_FINGERS,
    LEFT_WRIST,
    RIGHT_FINGERS,
    RIGHT_WRIST,
    SKELETON_JOINT_NAMES,
    joint_indices,
)
from h4w_ros import rep155  # noqa: E402
from h4w_ros.frames import joint_frame  # noqa: E402

pytestmark = pytest.mark.ros

CAMERA = "cam_optical"
UP = np.array([0.0, -1.0, 0.0])  # world up in the optical frame of a horizontal camera
TOWARDS_CAMERA = np.array([0.0, 0.0, -1.0])
TRANSL = np.array([0.1, -0.2, 2.5])
S = {name: i for i, name in enumerate(SKELETON_JOINT_NAMES)}
L_HIP, R_HIP, L_EYE, R_EYE = joint_indices("L_Hip", "R_Hip", "L_Eye", "R_Eye")


def angle_deg(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1.0, 1.0))))


def facing_orient(yaw_deg: float = 0.0) -> np.ndarray:
    """Axis-angle: upright, facing the camera, then turned by yaw about the world's vertical."""
    turn = Rotation.from_rotvec(np.radians(yaw_deg) * UP)
    return (turn * Rotation.from_rotvec([np.pi, 0.0, 0.0])).as_rotvec()


def posed(model, orient, body_pose=None, transl=TRANSL, track_id: int = 3) -> PersonResult:
    """A PersonResult of the stand-in posed with global_orient ``orient``, shifted by ``transl``
    (a pinhole projection with f = 500 px, centre (256, 256) for joints_img)."""
    body_pose = np.zeros(63) if body_pose is None else np.asarray(body_pose, float)

    def t(x):
        return torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(1, -1))

    with torch.no_grad():
        out = model(t(orient), t(body_pose), t(np.zeros(45)), t(np.zeros(45)), t(np.zeros(3)), t(np.zeros(10)),
                    t(np.zeros(10)))

    def f(x):
        return x[0].numpy().astype(np.float64)

    joints = f(out.joints) + transl
    params = SmplxParams(global_orient=orient, body_pose=body_pose, left_hand_pose=np.zeros(45),
                         right_hand_pose=np.zeros(45), jaw_pose=np.zeros(3), betas=np.zeros(10),
                         expression=np.zeros(10), cam_trans=transl)
    return PersonResult(
        params=params, track=TrackInfo(input_box=(100, 20, 200, 480), track_id=track_id), bbox_xywh=(100, 20, 200, 480),
        mesh_cam=f(out.vertices) + transl, vertices=f(out.vertices) + transl, joints=joints,
        skeleton_joints=f(out.skeleton_joints) + transl, skeleton_rotations=f(out.skeleton_rotations),
        joints_img=joints[:, :2] / joints[:, 2:] * 500.0 + 256.0,
        lhand_bbox=np.zeros(4), rhand_bbox=np.zeros(4), face_bbox=np.zeros(4))


@pytest.fixture(scope="module")
def model(standin_estimator):
    return standin_estimator.body_model


@pytest.fixture
def header() -> Header:
    h = Header(frame_id=CAMERA)
    h.stamp.sec, h.stamp.nanosec = 12, 345
    return h


def world_poses(transforms) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Compose a list of TransformStamped (parents first) into camera-frame poses per child frame."""
    poses = {CAMERA: (np.zeros(3), np.eye(3))}
    for t in transforms:
        assert t.header.frame_id in poses, f"{t.child_frame_id}: parent {t.header.frame_id} not published before it"
        assert t.child_frame_id not in poses, f"{t.child_frame_id} published twice"
        p, r = poses[t.header.frame_id]
        tr, q = t.transform.translation, t.transform.rotation
        local_r = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
        poses[t.child_frame_id] = (p + r @ np.array([tr.x, tr.y, tr.z]), r @ local_r)
    return poses


# ---- ids --------------------------------------------------------------------------------------------
def test_body_id_is_a_valid_topic_token_and_stable():
    from rclpy.validate_full_topic_name import validate_full_topic_name

    assert rep155.body_id(3) == "h4w00003" == rep155.body_id(3)
    assert rep155.body_id(0) != rep155.body_id(1)
    assert rep155.body_id(123456) == "h4w123456"
    assert rep155.face_id(3) == rep155.body_id(3)
    for track_id in (0, 7, 99999, 123456):
        validate_full_topic_name(f"/humans/bodies/{rep155.body_id(track_id)}/roi")  # raises when invalid
    assert rep155.body_id(-1, index=2) == "h4wu2"
    with pytest.raises(ValueError, match="untracked"):
        rep155.body_id(-1)


# ---- body frame axes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("yaw, forward", [(0.0, TOWARDS_CAMERA), (180.0, -TOWARDS_CAMERA),
                                          (90.0, None), (-30.0, None)])
def test_body_frame_axes(model, header, yaw, forward):
    result = posed(model, facing_orient(yaw))
    frames = world_poses(rep155.rep155_transforms(result, header, "h4w00003"))
    origin, r = frames["body_h4w00003"]
    if forward is None:  # turned by yaw about the vertical, from facing the camera
        forward = Rotation.from_rotvec(np.radians(yaw) * UP).apply(TOWARDS_CAMERA)
    assert angle_deg(r[:, 2], UP) < 10.0
    assert angle_deg(r[:, 0], forward) < 10.0
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) > 0
    # y = z x x is the person's left: from the right hip towards the left hip
    assert angle_deg(r[:, 1], result.joints[L_HIP] - result.joints[R_HIP]) < 10.0
    np.testing.assert_allclose(origin, 0.5 * (result.joints[L_HIP] + result.joints[R_HIP]), atol=1e-3)


def test_body_frame_z_follows_the_body_when_it_leans(model, header):
    # lean the whole body 30 deg towards the camera (about the camera's x axis)
    lean = Rotation.from_rotvec(np.radians(30.0) * np.array([1.0, 0.0, 0.0]))
    orient = (lean * Rotation.from_rotvec(facing_orient())).as_rotvec()
    result = posed(model, orient)
    _, r = rep155.body_basis(result)
    assert angle_deg(r[:, 2], lean.apply(UP)) < 10.0
    assert angle_deg(r[:, 0], lean.apply(TOWARDS_CAMERA)) < 10.0


# ---- face and gaze --------------------------------------------------------------------------------
@pytest.mark.parametrize("yaw, towards", [(0.0, True), (180.0, False), (40.0, True)])
def test_face_and_gaze_frames(model, header, yaw, towards):
    result = posed(model, facing_orient(yaw))
    frames = world_poses(rep155.rep155_transforms(result, header, "h4w00003", "h4w00003"))
    origin, face = frames["face_h4w00003"]
    forward = Rotation.from_rotvec(np.radians(yaw) * UP).apply(TOWARDS_CAMERA)
    assert angle_deg(face[:, 0], forward) < 10.0
    assert angle_deg(face[:, 2], UP) < 10.0
    np.testing.assert_allclose(origin, 0.5 * (result.joints[L_EYE] + result.joints[R_EYE]), atol=1e-3)
    gaze_origin, gaze = frames["gaze_h4w00003"]
    np.testing.assert_allclose(gaze_origin, origin, atol=1e-9)
    assert angle_deg(gaze[:, 2], face[:, 0]) < 1e-6  # z along the face's x
    assert angle_deg(gaze[:, 1], -face[:, 2]) < 1e-6  # optical: y down
    assert angle_deg(gaze[:, 0], -face[:, 1]) < 1e-6  # x to the face's right
    assert rep155.face_visible(result) is towards
    # the face frame hangs from the camera frame, gaze from the face
    by_child = {t.child_frame_id: t.header.frame_id for t in rep155.face_transforms(result, header, "f1")}
    assert by_child == {"face_f1": CAMERA, "gaze_f1": "face_f1"}


# ---- composition: every frame sits on the joint it claims ---------------------------------------------
def test_frames_compose_to_their_joints(model, header):
    body_pose = np.zeros(63)
    body_pose[51:54] = (0.0, -1.2, 0.0)  # left elbow flexed
    body_pose[9:12] = (0.8, 0.0, 0.0)  # left knee flexed
    body_pose[45:48] = (0.2, 0.5, 0.1)  # left shoulder turned
    result = posed(model, facing_orient(25.0), body_pose)
    transforms = rep155.rep155_transforms(result, header, "h4w00003", "h4w00003")
    frames = world_poses(transforms)
    assert all(t.header.stamp == header.stamp for t in transforms)
    sk, rot = np.asarray(result.skeleton_joints, float), np.asarray(result.skeleton_rotations, float)
    for link, joint in rep155.REP_LINKS:
        p, r = frames[f"{link}_h4w00003"]
        np.testing.assert_allclose(p, sk[S[joint]], atol=1e-3, err_msg=link)
        np.testing.assert_allclose(r, rot[S[joint]] @ rep155.SMPLX_TO_REP, atol=1e-5, err_msg=link)
    # wrists and fingers: frames.py's names, at the skeleton joints with the SMPL-X joint orientations
    for joint in (LEFT_WRIST, *LEFT_FINGERS, RIGHT_WRIST, *RIGHT_FINGERS):
        p, r = frames[joint_frame(joint, "h4w00003")]
        np.testing.assert_allclose(p, sk[joint], atol=1e-3, err_msg=SKELETON_JOINT_NAMES[joint])
        np.testing.assert_allclose(r, rot[joint], atol=1e-5, err_msg=SKELETON_JOINT_NAMES[joint])
    parents = {t.child_frame_id: t.header.frame_id for t in transforms}
    assert parents["body_h4w00003"] == CAMERA
    assert parents["l_wrist_h4w00003"] == parents["torso_h4w00003"] == "body_h4w00003"
    assert parents["l_index_1_h4w00003"] == "l_wrist_h4w00003"
    assert parents["l_index_2_h4w00003"] == "l_index_1_h4w00003"
    assert len(transforms) == 1 + len(rep155.REP_LINKS) + 2 + 30 + 2
    # the SMPL-X pelvis frame keeps its own name and pose
    pelvis = world_poses([rep155.smplx_pelvis_transform(result, header, "h4w00003")])["smplx_pelvis_h4w00003"]
    np.testing.assert_allclose(pelvis[0], sk[0], atol=1e-6)
    np.testing.assert_allclose(pelvis[1], rot[0], atol=1e-5)


def test_links_share_the_body_axes_at_rest(model, header):
    result = posed(model, facing_orient())
    frames = world_poses(rep155.rep155_transforms(result, header, "b"))
    _, body = frames["body_b"]
    for link, _ in rep155.REP_LINKS:
        _, r = frames[f"{link}_b"]
        assert angle_deg(r[:, 0], body[:, 0]) < 10.0 and angle_deg(r[:, 2], body[:, 2]) < 10.0, link


def test_hands_function_is_the_hand_part_and_prefix_applies(model, header):
    result = posed(model, facing_orient(10.0))
    everything = rep155.rep155_transforms(result, header, "x", "x", prefix="robot1/")
    without = rep155.rep155_transforms(result, header, "x", None, prefix="robot1/", hands=False)
    hands = rep155.hand_transforms_under_body(result, header, "x", prefix="robot1/")
    assert len(hands) == 32 and len(without) == 1 + len(rep155.REP_LINKS)
    assert [t.child_frame_id for t in without + hands] == [t.child_frame_id for t in everything][:len(without) + 32]
    for a, b in zip(hands, everything[len(without):]):
        assert a == b
    for t in everything:
        assert t.child_frame_id.startswith("robot1/")
        assert t.header.frame_id == CAMERA or t.header.frame_id.startswith("robot1/")
    assert {"robot1/body_x", "robot1/face_x", "robot1/gaze_x", "robot1/l_wrist_x", "robot1/r_thumb_3_x"} <= {
        t.child_frame_id for t in everything}



def test_people_transforms_for_a_frame(model, header):
    facing, away = posed(model, facing_orient(), track_id=3), posed(model, facing_orient(180.0), track_id=8)
    untracked = posed(model, facing_orient(), track_id=-1)
    transforms = rep155.people_transforms([facing, away, untracked], header)
    frames = world_poses(transforms)  # also checks parents first, no duplicates
    names = set(frames)
    assert {"body_h4w00003", "face_h4w00003", "gaze_h4w00003", "smplx_pelvis_h4w00003", "body_h4w00008",
            "smplx_pelvis_h4w00008", "body_h4wu2", "face_h4wu2", "l_thumb_3_h4w00008"} <= names
    assert "face_h4w00008" not in names  # seen from behind: no face
    assert len(transforms) == 3 * (1 + len(rep155.REP_LINKS) + 32 + 1) + 2 * 2

@pytest.mark.parametrize("options", [{}, {"prefix": "robot1/"}, {"prefix": "robot1/", "hands": False},
                                     {"smplx_pelvis": False}])
def test_people_transforms_are_each_persons_own_transforms_in_one_build(model, header, options, monkeypatch):
    """The frame's transforms (one quaternion conversion and one build, names kept per id) are, field
    by field and in order, each person's body and links, hands, face and pelvis from the separate
    functions; frame names follow the camera frame and the prefix from one frame to the next."""
    people = [posed(model, facing_orient(), track_id=3), posed(model, facing_orient(180.0), track_id=8),
              posed(model, facing_orient(30.0), np.full(63, 0.1), track_id=-1)]
    prefix, hands, pelvis = options.get("prefix", ""), options.get("hands", True), options.get("smplx_pelvis", True)
    builds = []
    build = rep155.stamped_transforms
    monkeypatch.setattr(rep155, "stamped_transforms", lambda *args: builds.append(len(args[1])) or build(*args))
    for camera in ("camera_optical_frame", "other_camera", "camera_optical_frame"):  # names kept, then reused
        frame_header = Header(frame_id=camera, stamp=header.stamp)
        builds.clear()
        got = rep155.people_transforms(people, frame_header, **options)
        assert builds == [len(got)]  # one build for the whole frame
        expected = []
        for index, person in enumerate(people):
            ident = rep155.body_id(person.track_id, index)
            expected += rep155.rep155_transforms(person, frame_header, ident, None, prefix, hands=False)
            if hands:
                expected += rep155.hand_transforms_under_body(person, frame_header, ident, prefix)
            if rep155.face_visible(person):
                expected += rep155.face_transforms(person, frame_header, ident, prefix)
            if pelvis:
                expected.append(rep155.smplx_pelvis_transform(person, frame_header, ident, prefix))
        assert got == expected
        assert all(t.child_frame_id.startswith(prefix) for t in got)
        assert {t.header.frame_id for t in got} <= {t.child_frame_id for t in got} | {camera}  # one tree on the camera
    assert rep155.people_transforms([], header) == []


# ---- URDF joint values -------------------------------------------------------------------------------
def _rx(a):
    return Rotation.from_rotvec([a, 0, 0]).as_matrix()


def _ry(a):
    return Rotation.from_rotvec([0, a, 0]).as_matrix()


def _rz(a):
    return Rotation.from_rotvec([0, 0, a]).as_matrix()


def test_urdf_joint_values_reproduce_the_limbs(model):
    body_pose = np.zeros(63)
    body_pose[51:54] = (0.0, -np.pi / 2, 0.0)  # left elbow 90 deg, forearm forward
    body_pose[54:57] = (0.0, 0.6, 0.0)  # right elbow 0.6 rad
    body_pose[45:48] = (0.0, 0.0, -1.2)  # left shoulder: arm lowered
    body_pose[9:12] = (1.0, 0.0, 0.0)  # left knee flexed, shin backwards
    body_pose[0:3] = (-0.7, 0.0, 0.2)  # left hip flexed forward, a little abducted
    result = posed(model, facing_orient(20.0), body_pose)
    values = dict(zip(rep155.REP_JOINT_NAMES, rep155.urdf_joint_positions(result)))
    assert rep155.urdf_joint_names("h4w00003")[:2] == ["waist_h4w00003", "r_head_h4w00003"]
    _, body = rep155.body_basis(result)
    torso = body @ _ry(values["waist"])
    sk = np.asarray(result.skeleton_joints, float)
    down = np.array([0.0, 0.0, -1.0])
    for side, r in (("l", 1.0), ("r", -1.0)):
        upper = torso @ _rz(-r * values[f"{side}_y_shoulder"]) @ _rx(r * values[f"{side}_p_shoulder"]) @ _rz(
            r * values[f"{side}_r_shoulder"])
        s = side.upper()
        assert angle_deg(upper @ down, sk[S[f"{s}_Elbow"]] - sk[S[f"{s}_Shoulder"]]) < 10.0, side
        forearm = upper @ _ry(-values[f"{side}_elbow"]) @ down
        assert angle_deg(forearm, sk[S[f"{s}_Wrist"]] - sk[S[f"{s}_Elbow"]]) < 10.0, side
        thigh = body @ _rz(-values[f"{side}_y_hip"]) @ _rx(r * values[f"{side}_p_hip"]) @ _ry(-values[f"{side}_r_hip"])
        assert angle_deg(thigh @ down, sk[S[f"{s}_Knee"]] - sk[S[f"{s}_Hip"]]) < 10.0, side
        shin = thigh @ _ry(-values[f"{side}_knee"]) @ down
        assert angle_deg(shin, sk[S[f"{s}_Ankle"]] - sk[S[f"{s}_Knee"]]) < 10.0, side
    # signs as the URDF's limits expect them: elbows flex positive, knees negative, hip flexion positive
    assert abs(values["l_elbow"] - np.pi / 2) < 0.15 and abs(values["r_elbow"] - 0.6) < 0.15
    assert values["l_knee"] < -0.8 and abs(values["r_knee"]) < 0.2
    assert values["l_r_hip"] > 0.5
    assert values["l_p_shoulder"] > 0 and values["r_p_shoulder"] > 0  # both arms abducted from hanging


def test_urdf_joint_values_at_rest(model):
    values = dict(zip(rep155.REP_JOINT_NAMES, rep155.urdf_joint_positions(posed(model, facing_orient(-60.0)))))
    for side in "lr":  # T-pose: arms horizontal (90 deg from hanging), straight
        assert abs(values[f"{side}_p_shoulder"] - np.pi / 2) < 0.1
        assert abs(values[f"{side}_elbow"]) < 0.1 and abs(values[f"{side}_knee"]) < 0.2
    for name in ("waist", "r_head", "y_head", "p_head"):
        assert abs(values[name]) < 0.1, name


# ---- hand messages (h4w_ros.hand_messages) ---------------------------------------------------------
def test_hand_state_messages_and_wholebody_fields(model, header):
    from rclpy.serialization import deserialize_message, serialize_message

    from h4w_core.people.hands import hand_states
    from h4w_ros import hand_messages
    from h4w_ros.msg import HandStateArray, WholeBodyMesh

    result = posed(model, facing_orient(), track_id=7)
    left, right = hand_messages.person_hand_states(result)
    core = hand_states(result.joints)
    assert (left.state, right.state) == (core[0].state, core[1].state)
    np.testing.assert_array_equal(right.curls, core[1].curls)
    msg = hand_messages.hand_state_message(right, 7)
    assert (msg.track_id, msg.side, msg.state) == (7, "right", right.state)
    assert abs(msg.confidence - right.confidence) < 1e-6 and abs(msg.aperture - right.aperture_m) < 1e-6
    np.testing.assert_allclose([msg.pointing_origin.x, msg.pointing_origin.y, msg.pointing_origin.z], right.pointing_origin, atol=1e-9)
    np.testing.assert_allclose([msg.pointing_direction.x, msg.pointing_direction.y, msg.pointing_direction.z],
                               right.pointing_direction, atol=1e-9)
    np.testing.assert_allclose(msg.curls, right.curls, atol=1e-6)
    array = hand_messages.hand_state_array(header, [(result, (left, right))])
    assert [h.side for h in array.hands] == ["left", "right"] and array.header == header
    back = deserialize_message(serialize_message(array), HandStateArray)
    assert back.hands[1].state == right.state and back.hands[0].track_id == 7
    mesh = hand_messages.set_hand_fields(WholeBodyMesh(), (left, right), 7)
    assert mesh.left_hand.side == "left" and mesh.right_hand.state == right.state
    assert deserialize_message(serialize_message(mesh), WholeBodyMesh).right_hand.side == "right"


def test_hand_arrow_markers(model, header):
    import dataclasses

    from visualization_msgs.msg import Marker

    from h4w_ros import hand_messages
    from h4w_ros.frames import person_key

    result = posed(model, facing_orient(), track_id=7)
    left, right = hand_messages.person_hand_states(result)
    pointing = dataclasses.replace(right, state="pointing", confidence=0.9)
    unmeasurable = dataclasses.replace(left, state="other", confidence=0.0, pointing_direction=np.zeros(3))
    markers = hand_messages.hand_arrow_markers(header, [(result, (unmeasurable, pointing))],
                                               lambda r, i: person_key(r.track_id, i), 0.5, length_m=0.4)
    assert [m.action for m in markers] == [Marker.DELETE, Marker.ADD]
    arrow = markers[1]
    assert arrow.ns == "h4w_pointing" and arrow.type == Marker.ARROW and arrow.header == header
    assert arrow.lifetime.sec == 0 and arrow.lifetime.nanosec == 500_000_000
    start, end = (np.array([p.x, p.y, p.z]) for p in arrow.points)
    np.testing.assert_allclose(start, pointing.pointing_origin, atol=1e-9)
    np.testing.assert_allclose(end - start, 0.4 * np.asarray(pointing.pointing_direction), atol=1e-9)
    assert (arrow.color.r, arrow.color.g, arrow.color.b) == pytest.approx(hand_messages.STATE_COLOURS["pointing"][:3])
    assert markers[0].id != arrow.id and markers[0].id == hand_messages.hand_marker_id("7", "left")
    ids = {hand_messages.hand_marker_id(k, s) for k in ("0", "7", "p0", "p7", "h4w00007") for s in ("left", "right")}
    assert len(ids) == 10 and all(0 <= i < 2**31 for i in ids)
    gone = hand_messages.delete_hand_markers(header, ["7"])
    assert {m.id for m in gone} == {hand_messages.hand_marker_id("7", s) for s in ("left", "right")}
