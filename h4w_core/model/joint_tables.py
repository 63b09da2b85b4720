"""Named joint sets of the reference (one table, no scattered integers).

JOINT_NAMES: the 137-joint set the reference supervises and returns (smplx_joint_proj order).
JOINT_LAYER_INDEX: index of each of them in the 144 joints the smplx layer returns
(55 skeleton joints, 21 vertex keypoints, 51 face landmarks, 17 contour landmarks).
POSITION_JOINT_NAMES: the 65 PositionNet joints (25 body, 20 left hand, 20 right hand).
SKELETON_JOINT_NAMES: the 55 SMPL-X skeleton joints (53 rotation joints plus the two eyes).
"""
from __future__ import annotations

JOINT_NAMES: tuple[str, ...] = (
    "Pelvis", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle",
    "R_Ankle", "Neck", "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow",
    "L_Wrist", "R_Wrist", "L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe",
    "R_Small_toe", "R_Heel", "L_Ear", "R_Ear", "L_Eye", "R_Eye",
    "Nose", "L_Thumb_1", "L_Thumb_2", "L_Thumb_3", "L_Thumb_4", "L_Index_1",
    "L_Index_2", "L_Index_3", "L_Index_4", "L_Middle_1", "L_Middle_2", "L_Middle_3",
    "L_Middle_4", "L_Ring_1", "L_Ring_2", "L_Ring_3", "L_Ring_4", "L_Pinky_1",
    "L_Pinky_2", "L_Pinky_3", "L_Pinky_4", "R_Thumb_1", "R_Thumb_2", "R_Thumb_3",
    "R_Thumb_4", "R_Index_1", "R_Index_2", "R_Index_3", "R_Index_4", "R_Middle_1",
    "R_Middle_2", "R_Middle_3", "R_Middle_4", "R_Ring_1", "R_Ring_2", "R_Ring_3",
    "R_Ring_4", "R_Pinky_1", "R_Pinky_2", "R_Pinky_3", "R_Pinky_4", "Face_1",
    "Face_2", "Face_3", "Face_4", "Face_5", "Face_6", "Face_7",
    "Face_8", "Face_9", "Face_10", "Face_11", "Face_12", "Face_13",
    "Face_14", "Face_15", "Face_16", "Face_17", "Face_18", "Face_19",
    "Face_20", "Face_21", "Face_22", "Face_23", "Face_24", "Face_25",
    "Face_26", "Face_27", "Face_28", "Face_29", "Face_30", "Face_31",
    "Face_32", "Face_33", "Face_34", "Face_35", "Face_36", "Face_37",
    "Face_38", "Face_39", "Face_40", "Face_41", "Face_42", "Face_43",
    "Face_44", "Face_45", "Face_46", "Face_47", "Face_48", "Face_49",
    "Face_50", "Face_51", "Face_52", "Face_53", "Face_54", "Face_55",
    "Face_56", "Face_57", "Face_58", "Face_59", "Face_60", "Face_61",
    "Face_62", "Face_63", "Face_64", "Face_65", "Face_66", "Face_67",
    "Face_68", "Face_69", "Face_70", "Face_71", "Face_72",
)

JOINT_LAYER_INDEX: tuple[int, ...] = (
    0, 1, 2, 4, 5, 7, 8, 12, 16, 17, 18, 19, 20, 21, 60, 61,
    62, 63, 64, 65, 59, 58, 57, 56, 55, 37, 38, 39, 66, 25, 26, 27,
    67, 28, 29, 30, 68, 34, 35, 36, 69, 31, 32, 33, 70, 52, 53, 54,
    71, 40, 41, 42, 72, 43, 44, 45, 73, 49, 50, 51, 74, 46, 47, 48,
    75, 22, 15, 57, 56, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86,
    87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102,
    103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118,
    119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134,
    135, 136, 137, 138, 139, 140, 141, 142, 143,
)

POSITION_JOINT_NAMES: tuple[str, ...] = (
    "Pelvis", "L_Hip", "R_Hip", "L_Knee", "R_Knee", "L_Ankle",
    "R_Ankle", "Neck", "L_Shoulder", "R_Shoulder", "L_Elbow", "R_Elbow",
    "L_Wrist", "R_Wrist", "L_Big_toe", "L_Small_toe", "L_Heel", "R_Big_toe",
    "R_Small_toe", "R_Heel", "L_Ear", "R_Ear", "L_Eye", "R_Eye",
    "Nose", "L_Thumb_1", "L_Thumb_2", "L_Thumb_3", "L_Thumb_4", "L_Index_1",
    "L_Index_2", "L_Index_3", "L_Index_4", "L_Middle_1", "L_Middle_2", "L_Middle_3",
    "L_Middle_4", "L_Ring_1", "L_Ring_2", "L_Ring_3", "L_Ring_4", "L_Pinky_1",
    "L_Pinky_2", "L_Pinky_3", "L_Pinky_4", "R_Thumb_1", "R_Thumb_2", "R_Thumb_3",
    "R_Thumb_4", "R_Index_1", "R_Index_2", "R_Index_3", "R_Index_4", "R_Middle_1",
    "R_Middle_2", "R_Middle_3", "R_Middle_4", "R_Ring_1", "R_Ring_2", "R_Ring_3",
    "R_Ring_4", "R_Pinky_1", "R_Pinky_2", "R_Pinky_3", "R_Pinky_4",
)

ROTATION_JOINT_NAMES: tuple[str, ...] = (
    "Pelvis", "L_Hip", "R_Hip", "Spine_1", "L_Knee", "R_Knee",
    "Spine_2", "L_Ankle", "R_Ankle", "Spine_3", "L_Foot", "R_Foot",
    "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder", "R_Shoulder",
    "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist", "L_Index_1", "L_Index_2",
    "L_Index_3", "L_Middle_1", "L_Middle_2", "L_Middle_3", "L_Pinky_1", "L_Pinky_2",
    "L_Pinky_3", "L_Ring_1", "L_Ring_2", "L_Ring_3", "L_Thumb_1", "L_Thumb_2",
    "L_Thumb_3", "R_Index_1", "R_Index_2", "R_Index_3", "R_Middle_1", "R_Middle_2",
    "R_Middle_3", "R_Pinky_1", "R_Pinky_2", "R_Pinky_3", "R_Ring_1", "R_Ring_2",
    "R_Ring_3", "R_Thumb_1", "R_Thumb_2", "R_Thumb_3", "Jaw",
)

# SMPL-X skeleton order: the 53 rotation joints with jaw at 22 and the eyes at 23, 24, then hands
SKELETON_JOINT_NAMES: tuple[str, ...] = (
    ROTATION_JOINT_NAMES[:22] + ("Jaw", "L_Eye_Joint", "R_Eye_Joint") + ROTATION_JOINT_NAMES[22:52]
)

PELVIS = SKELETON_JOINT_NAMES.index("Pelvis")
LEFT_WRIST = SKELETON_JOINT_NAMES.index("L_Wrist")
RIGHT_WRIST = SKELETON_JOINT_NAMES.index("R_Wrist")
LEFT_FINGERS = tuple(i for i, n in enumerate(SKELETON_JOINT_NAMES) if n.startswith("L_") and n[2:].split("_")[0] in
                     ("Index", "Middle", "Pinky", "Ring", "Thumb"))  # skeleton indices of the 15 left finger joints
RIGHT_FINGERS = tuple(i for i, n in enumerate(SKELETON_JOINT_NAMES) if n.startswith("R_") and n[2:].split("_")[0] in
                      ("Index", "Middle", "Pinky", "Ring", "Thumb"))


def joint_indices(*names: str, table: tuple[str, ...] = JOINT_NAMES) -> tuple[int, ...]:
    """Indices of named joints in a table (the 137-joint set by default); unknown names raise."""
    missing = [n for n in names if n not in table]
    if missing:
        raise KeyError(f"joints {missing} are not in the table")
    return tuple(table.index(n) for n in names)
