"""Person detectors: a synthetic YOLO ONNX model through real onnxruntime, and OpenCV's HOG on real photo crops."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from h4w_core.data import SAMPLE_PHOTO
from h4w_core.people.detection import (
    DetectorModelNotFoundError,
    HogConfig,
    HogPersonDetector,
    OnnxYoloConfig,
    OnnxYoloPersonDetector,
    PersonDetector,
    UnknownDetectorError,
    UnknownOutputLayoutError,
    decode_yolo,
    letterbox,
    make_detector,
)
from h4w_core.people.tracking import Tracker, TrackerConfig, box_iou
from h4w_core.testing.sequence import PHOTO_PERSON_BOX, load_person_sprite, make_crowd_sequence

PHOTO = SAMPLE_PHOTO
SIZE = 320  # synthetic model input, square
# Extra candidates in input pixels: cx, cy, w, h, objectness, person, other class
DUPLICATE_SHIFT = (4.0, 2.0)
CONSTANT_ROWS = [
    (50, 60, 30, 40, 1.0, 0.2, 0.01),  # person below the 0.25 threshold
    (200, 200, 40, 80, 1.0, 0.05, 0.95),  # another class
    (250, 150, 40, 80, 1.0, 0.6, 0.1),  # a second person
] + [(8.0 * i, 16.0, 8, 8, 0.0, 0.0, 0.0) for i in range(59)]  # empty anchors, as real heads have many
NUM_CANDIDATES = 2 + len(CONSTANT_ROWS)  # 64: more candidates than channels, as in real exports


def _const(name: str, value) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, np.float32), name))


def _write_model(path: Path, layout: str) -> Path:
    """A 'detector' of the red rectangle in the input: moments of the red>0.5 mask give cx, cy, w, h
    (a uniform rectangle's width is sqrt(12 var + 1) in pixel units), followed by a shifted
    duplicate and the constant candidates, in the YOLOv8 (1, 4+C, N) or YOLOv5 (1, N, 5+C) layout."""
    coords = np.arange(SIZE, dtype=np.float32) + 0.5
    nodes = [
        _const("grid_x", np.broadcast_to(coords[None, :], (1, SIZE, SIZE))),
        _const("grid_y", np.broadcast_to(coords[:, None], (1, SIZE, SIZE))),
        _const("half", 0.5), _const("twelve", 12.0), _const("one", 1.0),
        helper.make_node("Constant", [], ["axes"], value=numpy_helper.from_array(np.array([1, 2], np.int64))),
        helper.make_node("Constant", [], ["red_idx"], value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["images", "red_idx"], ["red"], axis=1),
        helper.make_node("Greater", ["red", "half"], ["mask_b"]),
        helper.make_node("Cast", ["mask_b"], ["mask"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["mask", "axes"], ["area"], keepdims=0),
    ]
    for axis in ("x", "y"):
        nodes += [
            helper.make_node("Mul", ["mask", f"grid_{axis}"], [f"m{axis}"]),
            helper.make_node("Mul", [f"m{axis}", f"grid_{axis}"], [f"m{axis}{axis}"]),
            helper.make_node("ReduceSum", [f"m{axis}", "axes"], [f"s{axis}"], keepdims=0),
            helper.make_node("ReduceSum", [f"m{axis}{axis}", "axes"], [f"s{axis}{axis}"], keepdims=0),
            helper.make_node("Div", [f"s{axis}", "area"], [f"c{axis}"]),
            helper.make_node("Div", [f"s{axis}{axis}", "area"], [f"e{axis}{axis}"]),
            helper.make_node("Mul", [f"c{axis}", f"c{axis}"], [f"c{axis}2"]),
            helper.make_node("Sub", [f"e{axis}{axis}", f"c{axis}2"], [f"var{axis}"]),
            helper.make_node("Mul", [f"var{axis}", "twelve"], [f"v12{axis}"]),
            helper.make_node("Add", [f"v12{axis}", "one"], [f"v12p{axis}"]),
            helper.make_node("Sqrt", [f"v12p{axis}"], [f"size{axis}"]),
        ]
    nodes += [
        _const("shift_x", DUPLICATE_SHIFT[0]), _const("shift_y", DUPLICATE_SHIFT[1]),
        helper.make_node("Add", ["cx", "shift_x"], ["dx"]),
        helper.make_node("Add", ["cy", "shift_y"], ["dy"]),
        _const("tail_main", [1.0, 0.9, 0.05]), _const("tail_dup", [1.0, 0.8, 0.1]),
        helper.make_node("Concat", ["cx", "cy", "sizex", "sizey", "tail_main"], ["row_main"], axis=0),
        helper.make_node("Concat", ["dx", "dy", "sizex", "sizey", "tail_dup"], ["row_dup"], axis=0),
        _const("rows_const", CONSTANT_ROWS),
        helper.make_node("Constant", [], ["row_shape"], value=numpy_helper.from_array(np.array([1, 7], np.int64))),
        helper.make_node("Reshape", ["row_main", "row_shape"], ["r0"]),
        helper.make_node("Reshape", ["row_dup", "row_shape"], ["r1"]),
        helper.make_node("Concat", ["r0", "r1", "rows_const"], ["rows"], axis=0),  # (N, 7) v5 rows
        helper.make_node("Unsqueeze", ["rows", "zero_axis"], ["rows_b"]),
        helper.make_node("Constant", [], ["zero_axis"], value=numpy_helper.from_array(np.array([0], np.int64))),
    ]
    if layout == "yolov5":
        nodes.append(helper.make_node("Identity", ["rows_b"], ["output0"]))
        out_shape = [1, NUM_CANDIDATES, 7]
    else:  # drop the objectness column, channels first
        nodes += [
            helper.make_node(
                "Constant", [], ["keep"], value=numpy_helper.from_array(np.array([0, 1, 2, 3, 5, 6], np.int64))
            ),
            helper.make_node("Gather", ["rows_b", "keep"], ["rows8"], axis=2),
            helper.make_node("Transpose", ["rows8"], ["output0"], perm=[0, 2, 1]),
        ]
        out_shape = [1, 6, NUM_CANDIDATES]
    # constants must precede their users for a valid topological order
    nodes.sort(key=lambda n: n.op_type != "Constant")
    graph = helper.make_graph(
        nodes,
        "toy_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module", params=["yolov8", "yolov5"])
def toy_model(request, tmp_path_factory):
    return _write_model(tmp_path_factory.mktemp("onnx") / f"toy_{request.param}.onnx", request.param), request.param


def _red_rectangle(height=300, width=500, box=(120, 60, 80, 180)):
    img = np.zeros((height, width, 3), np.uint8)
    x, y, w, h = box
    img[y : y + h, x : x + w] = (255, 0, 0)
    return img


def _expected_constant_person():
    # 300x500 into 320x320: ratio 0.64, resized 320x192, padded 64 rows top; (250,150,40,80) cx,cy,w,h
    ratio, pad_y = 0.64, 64.0
    cx, cy, w, h = 250.0, 150.0, 40.0, 80.0
    return np.array([(cx - w / 2) / ratio, (cy - h / 2 - pad_y) / ratio, w / ratio, h / ratio])


def test_yolo_boxes_map_back_through_the_letterbox(toy_model):
    path, layout = toy_model
    det = make_detector("onnx", model_path=str(path), score_threshold=0.25, nms_iou=0.45)
    assert isinstance(det, PersonDetector) and det.input_size == (SIZE, SIZE)
    found = det.detect(_red_rectangle())
    # the rectangle (0.9), the constant person (0.6); the duplicate is suppressed by NMS,
    # the 0.2 person is under the threshold and the other-class box is not a person
    assert [round(d.score, 3) for d in found] == [0.9, 0.6]
    np.testing.assert_allclose(found[0].bbox_xywh, [120, 60, 80, 180], atol=1.6)
    np.testing.assert_allclose(found[1].bbox_xywh, _expected_constant_person(), atol=1e-3)


def test_yolo_threshold_nms_and_max_persons(toy_model):
    path, _ = toy_model
    img = _red_rectangle()
    strict = OnnxYoloPersonDetector(OnnxYoloConfig(str(path), score_threshold=0.7))
    assert [round(d.score, 3) for d in strict.detect(img)] == [0.9]
    no_nms = OnnxYoloPersonDetector(OnnxYoloConfig(str(path), nms_iou=0.99))
    scores = [round(d.score, 3) for d in no_nms.detect(img)]
    assert scores == [0.9, 0.8, 0.6]
    one = OnnxYoloPersonDetector(OnnxYoloConfig(str(path), max_persons=1))
    assert len(one.detect(img)) == 1 and one.detect(img)[0].score == pytest.approx(0.9)


def test_yolo_channel_order(toy_model):
    path, _ = toy_model
    det = OnnxYoloPersonDetector(OnnxYoloConfig(str(path)))
    bgr = _red_rectangle()[:, :, ::-1].copy()
    assert det.detect(bgr, channel_order="bgr")[0].score == pytest.approx(0.9)
    # read as RGB the rectangle is blue: the model sees no red, only the constant person remains
    assert [round(d.score, 3) for d in det.detect(bgr, channel_order="rgb")] == [0.6]


def test_letterbox_round_trip_on_a_tall_image():
    rgb = np.zeros((400, 100, 3), np.uint8)
    canvas, fit = letterbox(rgb, (320, 256))
    assert canvas.shape == (320, 256, 3)
    assert (fit.scale_x, fit.scale_y, fit.pad_x, fit.pad_y) == (0.8, 0.8, 88.0, 0.0)
    assert np.all(canvas[:, :88] == 114) and np.all(canvas[:, 88:168] == 0)
    np.testing.assert_allclose(fit.to_original(np.array([[88.0, 0.0, 80.0, 320.0]])), [[0, 0, 100, 400]])


def test_decode_rejects_unknown_layouts():
    with pytest.raises(UnknownOutputLayoutError):
        decode_yolo(np.zeros((1, 6, 10, 2)))
    with pytest.raises(UnknownOutputLayoutError):
        decode_yolo(np.zeros((2, 6, 100)))
    with pytest.raises(UnknownOutputLayoutError):  # 4 channels: boxes but no class score
        decode_yolo(np.zeros((1, 4, 100)))
    with pytest.raises(UnknownOutputLayoutError):  # v5 needs objectness + one class at least
        decode_yolo(np.zeros((1, 100, 5)), layout="yolov5")
    # yolov5 score = objectness x class probability; yolov8 has no objectness
    v5 = np.array([[[10, 10, 4, 4, 0.5, 0.8, 0.1]]], np.float32)
    boxes, scores = decode_yolo(v5, layout="yolov5")
    np.testing.assert_allclose(boxes, [[8, 8, 4, 4]])
    assert scores[0] == pytest.approx(0.4)
    v8 = v5[:, :, [0, 1, 2, 3, 5, 6]].transpose(0, 2, 1)  # (1, 6, 1)
    boxes, scores = decode_yolo(v8, layout="yolov8")
    assert scores[0] == pytest.approx(0.8)
    # 'auto' tells them apart by which dimension is longer (real heads have thousands of anchors)
    _, scores = decode_yolo(np.repeat(v8, 100, axis=2))
    np.testing.assert_allclose(scores, 0.8)
    _, scores = decode_yolo(np.repeat(v5, 100, axis=1))
    np.testing.assert_allclose(scores, 0.4)
    # a candidate whose best class is not a person is not a person
    _, scores = decode_yolo(np.array([[[10, 10, 4, 4, 0.3, 0.6]]]).transpose(0, 2, 1), layout="yolov8")
    assert scores[0] == 0.0


def test_missing_model_and_unknown_detector(tmp_path):
    with pytest.raises(DetectorModelNotFoundError, match="not found"):
        make_detector("onnx", model_path=str(tmp_path / "missing.onnx"))
    with pytest.raises(FileNotFoundError):  # also an ordinary FileNotFoundError
        OnnxYoloPersonDetector(OnnxYoloConfig(str(tmp_path / "missing.onnx")))
    with pytest.raises(UnknownDetectorError, match="hog"):
        make_detector("yolo9000")
    with pytest.raises(ValueError):
        make_detector("onnx", model_path="x.onnx", layout="yolox")
    with pytest.raises(ValueError):
        HogConfig(score_threshold=1.5)


def _upright_composite(person_height=128, x=60, y=50, size=(240, 480)):
    """The photo's person squeezed to a pedestrian's 1:2 aspect on a plain grey wall."""
    sprite = load_person_sprite(PHOTO)
    w = person_height // 2
    img = np.full((*size, 3), 120, np.uint8)
    img[y : y + person_height, x : x + w] = cv2.resize(sprite, (w, person_height), interpolation=cv2.INTER_AREA)
    return img, np.array([x, y, w, person_height], np.float64)


def test_hog_on_the_portrait_photo_returns_sane_boxes():
    """The astronaut photo is a half-body portrait filling the frame: the pedestrian HOG model
    finds nobody in it (OpenCV 4.x); whatever it returns must be well-formed."""
    bgr = cv2.imread(str(PHOTO), cv2.IMREAD_COLOR)
    found = HogPersonDetector().detect(bgr, channel_order="bgr")
    for d in found:
        x, y, w, h = d.bbox_xywh
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 512 and y + h <= 512
        assert 0.5 <= d.score <= 1.0
    assert PHOTO_PERSON_BOX[2] * PHOTO_PERSON_BOX[3] > 0.5 * 512 * 512  # the person fills the photo


def test_hog_finds_the_upright_photo_person_at_pedestrian_scale():
    det = make_detector("hog")
    hits = 0
    for x, y in [(20, 40), (100, 55), (180, 50), (260, 45), (340, 60)]:
        img, gt = _upright_composite(128, x, y)
        found = det.detect(img)
        assert all(box_iou(gt, d.bbox_xywh)[0, 0] > 0.5 for d in found), "false positive on a plain wall"
        hits += bool(found)
    assert hits >= 4
    # a large image is downscaled for speed; boxes still come back in its own pixels
    img, gt = _upright_composite(128, 180, 50)
    big = cv2.resize(img, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_LINEAR)
    found = HogPersonDetector(HogConfig(max_side=480)).detect(big)
    assert len(found) == 1 and box_iou(gt * 2.0, found[0].bbox_xywh)[0, 0] > 0.5


def test_hog_and_tracker_on_the_crowd_sequence():
    """Offline detection + tracking on the real-photo sequence: most fully visible people are
    found, nothing else is, and each detected person keeps few ids."""
    seq = make_crowd_sequence()
    det, tracker = make_detector("hog", score_threshold=0.4), Tracker(TrackerConfig())
    found = visible = false_pos = 0
    ids_of: dict[int, set[int]] = {}
    for frame, gt, gt_ids, vis in zip(seq.frames, seq.gt_boxes, seq.gt_ids, seq.visibility):
        dets = det.detect(frame)
        boxes = np.array([d.bbox_xywh for d in dets]).reshape(-1, 4)
        ids = tracker.update(boxes, np.array([d.score for d in dets]))
        iou = box_iou(gt, boxes)
        full = vis > 0.9
        found += int(((iou.max(axis=1) if len(boxes) else np.zeros(len(gt))) > 0.5)[full].sum())
        visible += int(full.sum())
        for j, tid in enumerate(ids):
            ranked = np.sort(iou[:, j])[::-1]
            if ranked[0] < 0.3:
                false_pos += 1
            elif tid >= 0 and (len(ranked) == 1 or ranked[1] < 0.2):  # unambiguous while people overlap
                ids_of.setdefault(int(gt_ids[np.argmax(iou[:, j])]), set()).add(tid)
    assert false_pos == 0
    assert found / visible >= 0.8, f"HOG recall {found}/{visible}"
    # persons 0 and 1 stay in view (1 hides 0 for a few frames while HOG also misses both):
    # one id each; person 2 leaves for longer than max_age and comes back with a new id
    assert len(ids_of[0]) == 1 and len(ids_of[1]) == 1, ids_of
    assert len(ids_of[2]) == 2 and len(set().union(*ids_of.values())) == 4
