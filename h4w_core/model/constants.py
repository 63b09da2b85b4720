"""Constants of the reference implementation (Hand4Whole main/config.py).

They are part of the checkpoint contract: the released weights were trained with them.
"""
from __future__ import annotations

INPUT_IMG_SHAPE = (512, 384)  # (H, W) crop fed to the model; hand/face RoIs are taken from it
CROP_SHAPE = (3, *INPUT_IMG_SHAPE)  # (C, H, W) of one network input crop, channels first
INPUT_BODY_SHAPE = (256, 192)  # body backbone input, nearest-downsampled from the crop
OUTPUT_HM_SHAPE = (8, 8, 6)  # body 3D heatmap (D, H, W)
INPUT_HAND_SHAPE = (256, 256)
OUTPUT_HAND_HM_SHAPE = (8, 8, 8)
INPUT_FACE_SHAPE = (192, 192)
FOCAL = (5000.0, 5000.0)  # virtual focal, pixels of the 192x256 body input
PRINCPT = (96.0, 128.0)
CAMERA_3D_SIZE = 2.5  # metres: assumed real-world human extent that fixes t_z
BOX_ASPECT = INPUT_IMG_SHAPE[1] / INPUT_IMG_SHAPE[0]  # 0.75
BOX_SCALE = 1.25
HAND_BOX_EXTENSION = 2.0
FACE_BOX_EXTENSION = 1.5
NUM_BETAS = 10
NUM_EXPRESSION = 10
NUM_VERTICES = 10475
NUM_FACES = 20908

# Names of the network's SMPL-X outputs (NetworkOutput fields), for code that compares or passes them
POSE_FIELDS = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose")  # axis-angle, rad
SMPLX_PARAM_FIELDS = POSE_FIELDS + ("betas", "expression")  # BodyModel's argument order
# values per person of each field: 1 + 21 body + 15 + 15 hand joints + jaw, 3 axis-angle numbers each
SMPLX_PARAM_SIZES = dict(zip(SMPLX_PARAM_FIELDS, (3, 21 * 3, 15 * 3, 15 * 3, 3, NUM_BETAS, NUM_EXPRESSION)))
