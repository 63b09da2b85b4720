"""One consistent state per published person, with smoothing on, over a moving multi-person sequence.

Every TF frame composed down to the camera frame lands on the message's own joint of that name
(and turns like its hand orientation), and the message's SMPL-X fields, posed again by the body
model and placed with its placement_box, cam_trans and depth_scale, give back its vertices.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from ros_support import require_rclpy

require_rclpy()

from std_msgs.msg import Header  # noqa: E402

from h4w_core.inference.camera import Intrinsics  # noqa: E402
from h4w_core.inference.placement import lift_to_camera  # noqa: E402
from h4w_core.model.constants import SMPLX_PARAM_FIELDS  # noqa: E402
from h4w_core.model.joint_tables import JOINT_NAMES, SKELETON_JOINT_NAMES  # noqa: E402
from h4w_core.people.pipeline import PeopleConfig, PeoplePipeline  # noqa: E402
from h4w_core.testing.sequence import make_crowd_sequence  # noqa: E402
from h4w_ros import messages  # noqa: E402
from h4w_ros.frames import HAND_ORIENTATION_JOINTS, joint_frame  # noqa: E402

TOL_M = 1e-3  # the bound asked of one consistent state; float32 messages carry ~1e-6 m here
FRAMES = 8


def _matrix(t) -> np.ndarray:
    """4x4 of a geometry_msgs/Transform."""
    q, p = t.rotation, t.translation
    m = np.eye(4)
    m[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    m[:3, 3] = [p.x, p.y, p.z]
    return m


def _in_camera(transforms, camera_frame: str) -> dict[str, np.ndarray]:
    """Every child frame's pose in the camera frame, composing parents first."""
    by_child = {t.child_frame_id: t for t in transforms}
    poses = {camera_frame: np.eye(4)}

    def pose(frame: str) -> np.ndarray:
        if frame not in poses:
            t = by_child[frame]
            poses[frame] = pose(t.header.frame_id) @ _matrix(t.transform)
        return poses[frame]

    return {child: pose(child) for child in by_child}


@pytest.fixture(scope="module")
def published(standin_estimator):
    """(message, transforms, intrinsics) for every person of FRAMES frames of the crowd sequence."""
    seq = make_crowd_sequence(num_frames=FRAMES)
    pipeline = PeoplePipeline(PeopleConfig(box_source="detections", smoothing=True, track_min_hits=1))
    height, width = seq.frames[0].shape[:2]
    camera = Intrinsics.default_for(width, height)
    out = []
    for t, frame in enumerate(seq.frames):
        given = (np.asarray(seq.gt_boxes[t], np.float64), np.ones(len(seq.gt_boxes[t])))
        people = pipeline.process(standin_estimator, frame, "rgb", camera, stamp_s=t / 15.0, given=given).people
        header = Header(frame_id="camera_optical_frame")
        for r in people:
            out.append((messages.person_message(r), messages.person_transforms(r, header, str(r.track_id)), camera, t))
    assert len({t for *_, t in out}) == FRAMES and len(out) >= 2 * FRAMES
    return out


def test_every_tf_frame_sits_on_the_joint_of_the_same_message(published):
    checked = 0
    for msg, transforms, _, _ in published:
        joints = np.array([[p.x, p.y, p.z] for p in msg.joints])
        in_camera = _in_camera(transforms, "camera_optical_frame")
        key = str(msg.track_id)
        for skeleton_index in (0, *HAND_ORIENTATION_JOINTS):
            name = SKELETON_JOINT_NAMES[skeleton_index]
            frame = joint_frame(skeleton_index, key)
            offset = np.linalg.norm(in_camera[frame][:3, 3] - joints[JOINT_NAMES.index(name)])
            assert offset <= TOL_M, (frame, offset)
            checked += 1
        quats = np.array([[q.x, q.y, q.z, q.w] for q in msg.hand_orientations])
        for quat, skeleton_index in zip(quats, HAND_ORIENTATION_JOINTS):
            tf_rot = Rotation.from_matrix(in_camera[joint_frame(skeleton_index, key)][:3, :3])
            assert (tf_rot.inv() * Rotation.from_quat(quat)).magnitude() < 1e-4
        root = in_camera[f"body_{key}"][:3, 3]
        assert np.linalg.norm(root - [msg.root_pose.position.x, msg.root_pose.position.y, msg.root_pose.position.z]) <= TOL_M
    assert checked == len(published) * 33


def test_reposing_the_message_fields_gives_its_vertices(published, standin_estimator):
    body_model = standin_estimator.body_model
    for msg, _, camera, _ in published:
        args = [torch.tensor(np.asarray(getattr(msg, name), np.float32))[None] for name in SMPLX_PARAM_FIELDS]
        with torch.no_grad():
            posed = body_model(*args).vertices
        cam_trans = torch.tensor(np.asarray(msg.cam_trans, np.float32))[None]
        x1, y1, x2, y2 = msg.placement_box
        box = torch.tensor([[x1, y1, x2 - x1, y2 - y1]], dtype=torch.float32)
        vertices = lift_to_camera(posed + cam_trans[:, None], cam_trans, box, camera)[0].numpy() * msg.depth_scale
        published_vertices = np.asarray(msg.vertices, np.float64).reshape(-1, 3)
        assert np.abs(vertices - published_vertices).max() <= TOL_M


def test_smoothing_changed_the_parameters_it_publishes(standin_estimator):
    """The fields above are the smoothed ones: without smoothing, the same moving frames give other
    placement boxes and translations (the stand-in network's poses barely move)."""
    seq = make_crowd_sequence(num_frames=4)
    height, width = seq.frames[0].shape[:2]
    camera = Intrinsics.default_for(width, height)
    poses = {}
    for smoothing in (True, False):
        pipeline = PeoplePipeline(PeopleConfig(box_source="detections", smoothing=smoothing, track_min_hits=1))
        for t, frame in enumerate(seq.frames):
            given = (np.asarray(seq.gt_boxes[t], np.float64), np.ones(len(seq.gt_boxes[t])))
            people = pipeline.process(standin_estimator, frame, "rgb", camera, stamp_s=t / 15.0, given=given).people
        poses[smoothing] = {r.track_id: np.concatenate([r.bbox_xywh, r.cam_trans, r.body_pose]) for r in people}
    common = set(poses[True]) & set(poses[False])
    assert common and any(np.abs(poses[True][k] - poses[False][k]).max() > 1e-4 for k in common)
