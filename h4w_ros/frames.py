"""TF frame names and the SMPL-X frame tree (``<part>_<id>``) of :func:`h4w_ros.messages.person_transforms`.

The node itself broadcasts the REP 155 tree of h4w_ros/rep155.py (``body_<id>`` with REP axes,
its links, these wrist and finger frames under it, face and gaze, ``smplx_pelvis_<id>``); this
module's tree, with ``body_<id>`` the SMPL-X pelvis, stays for the benchmarks and the tests that
compose frames with SMPL-X axes.

Per person, with ``<id>`` the track id (or ``p<index>`` in the frame when untracked):

    <camera optical frame>
      body_<id>                 pelvis: position and global orientation from SMPL-X
        l_wrist_<id>            left wrist
          l_index_1_<id> -> l_index_2_<id> -> l_index_3_<id>
          l_middle_1_<id> ...   (the same for middle, pinky, ring, thumb)
        r_wrist_<id>            right wrist, and its 15 finger frames

Every name starts with the node's ``frame_prefix`` (e.g. ``cam_left/``; empty by default).
Orientations are SMPL-X forward kinematics (hand means included); positions are the
skeleton joints placed in the real camera frame.
"""
from __future__ import annotations

from h4w_core.model.joint_tables import LEFT_FINGERS, LEFT_WRIST, PELVIS, RIGHT_FINGERS, RIGHT_WRIST, SKELETON_JOINT_NAMES


def person_key(track_id: int, index: int) -> str:
    """The id used in frame names and marker namespaces: the track id, else the index in the frame."""
    return str(track_id) if track_id >= 0 else f"p{index}"


def joint_frame(joint: int, key: str, prefix: str = "") -> str:
    """Frame name of a skeleton joint (pelvis -> body_<key>), after the node's frame_prefix."""
    if joint == PELVIS:
        return f"{prefix}body_{key}"
    return f"{prefix}{SKELETON_JOINT_NAMES[joint].lower()}_{key}"


def _hand_tree(wrist: int, fingers: tuple[int, ...]) -> list[tuple[int, int]]:
    """(joint, parent) pairs: wrist under the pelvis, each finger chain of 3 under the wrist."""
    pairs = [(wrist, PELVIS)]
    for start in range(0, len(fingers), 3):
        chain = fingers[start : start + 3]
        pairs += [(chain[0], wrist), (chain[1], chain[0]), (chain[2], chain[1])]
    return pairs


# (joint, parent joint) for every published frame below body_<id>, parents first
FRAME_TREE: tuple[tuple[int, int], ...] = tuple(_hand_tree(LEFT_WRIST, LEFT_FINGERS) + _hand_tree(RIGHT_WRIST, RIGHT_FINGERS))

# Joints whose orientations WholeBodyMesh.hand_orientations carries, in its documented order
HAND_ORIENTATION_JOINTS: tuple[int, ...] = (LEFT_WRIST, *LEFT_FINGERS, RIGHT_WRIST, *RIGHT_FINGERS)
