"""Mesh overlays drawn with OpenCV alone (no OpenGL): shaded triangles, painter's order."""
from __future__ import annotations

import cv2
import numpy as np

PALETTE = ((235, 150, 80), (90, 190, 240), (120, 220, 120), (230, 110, 200), (240, 220, 90), (160, 140, 250))


def person_colour(index: int) -> tuple[int, int, int]:
    """A stable RGB colour per person index or track id."""
    return PALETTE[index % len(PALETTE)]


def draw_mesh(
    image_rgb: np.ndarray,
    vertices_cam: np.ndarray,
    uv: np.ndarray,
    faces: np.ndarray,
    colour: tuple[int, int, int],
    alpha: float = 0.7,
) -> np.ndarray:
    """Blend one mesh over an RGB image. vertices_cam (V,3) for depth and shading, uv (V,2) pixels."""
    out = image_rgb.copy()
    layer = out.copy()
    tri = vertices_cam[faces]  # (F, 3, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    centre = tri.mean(axis=1)
    view = -centre / (np.linalg.norm(centre, axis=1, keepdims=True) + 1e-12)
    shade = np.clip(np.abs((normals * view).sum(axis=1)), 0.25, 1.0)
    pts = np.round(uv[faces] * 16).astype(np.int32)  # 4 fractional bits for sub-pixel accuracy
    h, w = image_rgb.shape[:2]
    visible = (centre[:, 2] > 0) & np.all(np.isfinite(uv[faces]), axis=(1, 2))
    inside = (uv[faces][..., 0].max(1) >= 0) & (uv[faces][..., 0].min(1) < w) & (uv[faces][..., 1].max(1) >= 0) & (uv[faces][..., 1].min(1) < h)
    base = np.asarray(colour, dtype=np.float32)
    for f in np.argsort(-centre[:, 2]):  # far to near
        if visible[f] and inside[f]:
            cv2.fillConvexPoly(layer, pts[f], (base * shade[f]).tolist(), lineType=cv2.LINE_AA, shift=4)
    drawn = np.any(layer != out, axis=2, keepdims=True)
    blended = (alpha * layer + (1 - alpha) * out).astype(np.uint8)
    return np.where(drawn, blended, out)


def draw_box(image_rgb: np.ndarray, xyxy: np.ndarray, colour: tuple[int, int, int], label: str = "") -> None:
    x1, y1, x2, y2 = (int(round(float(v))) for v in xyxy)
    cv2.rectangle(image_rgb, (x1, y1), (x2, y2), colour, 2)
    if label:
        cv2.putText(image_rgb, label, (x1 + 3, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)


def draw_banner(image_rgb: np.ndarray, text: str) -> None:
    """A red strip on top of the image (used to mark stand-in outputs)."""
    cv2.rectangle(image_rgb, (0, 0), (image_rgb.shape[1], 22), (200, 0, 0), -1)
    cv2.putText(image_rgb, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)


def render_overlay(image_bgr: np.ndarray, results, faces: np.ndarray, intrinsics, standin: bool) -> np.ndarray:
    """BGR image with each person's projected mesh, box and hand/face boxes drawn (and a banner
    when the results come from stand-in assets)."""
    canvas = image_bgr[:, :, ::-1].copy()  # its own pixels: drawn on in place, never the caller's image
    for i, r in enumerate(results):
        colour = person_colour(r.track_id if r.track_id >= 0 else i)
        canvas = draw_mesh(canvas, r.vertices, intrinsics.project(r.vertices), faces, colour)
        x, y, w, h = r.bbox_xywh
        draw_box(canvas, np.array([x, y, x + w, y + h]), colour, f"person {i}")
        for name in ("lhand_bbox", "rhand_bbox", "face_bbox"):
            draw_box(canvas, getattr(r, name), colour)
    if standin:
        draw_banner(canvas, "STAND-IN ASSETS - not real estimates")
    return canvas[:, :, ::-1]
