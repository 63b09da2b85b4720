"""sensor_msgs/Image <-> numpy, without cv_bridge.

Supported encodings (``sensor_msgs/image_encodings``):

============  =====================  ==============
encoding      numpy array            channel order
============  =====================  ==============
rgb8, bgr8    H x W x 3, uint8       'rgb' / 'bgr'
rgba8, bgra8  H x W x 3, uint8       'rgb' / 'bgr' (alpha dropped)
mono8         H x W, uint8           'mono'
mono16/16UC1  H x W, uint16          'mono'
32FC1         H x W, float32         'mono'
============  =====================  ==============

Row padding (``step`` larger than ``width * bytes per pixel``) and ``is_bigendian`` are
honoured; the returned arrays are C-contiguous, native byte order, and own their memory (they
never alias the message buffer).

The real cv_bridge is deliberately not used even where importable: its ``passthrough``
conversion keeps the alpha channel and returns views with the message's byte order, so it does
not have this module's behaviour, and it is not available from PyPI (ROS 1 code there).
"""
from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np
from sensor_msgs.msg import Image

__all__ = [
    "ImageConversionError",
    "SUPPORTED_ENCODINGS",
    "image_to_numpy",
    "image_to_rgb",
    "numpy_to_image",
]


class ImageConversionError(ValueError):
    """A sensor_msgs/Image cannot be converted (encoding, size or data length)."""


class _Layout(NamedTuple):
    dtype: np.dtype       # element type, native byte order
    channels: int         # channels stored in the message
    kept: int             # channels returned (alpha dropped)
    order: str            # 'rgb', 'bgr' or 'mono'


_LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout(np.dtype(np.uint8), 3, 3, "rgb"),
    "bgr8": _Layout(np.dtype(np.uint8), 3, 3, "bgr"),
    "rgba8": _Layout(np.dtype(np.uint8), 4, 3, "rgb"),
    "bgra8": _Layout(np.dtype(np.uint8), 4, 3, "bgr"),
    "mono8": _Layout(np.dtype(np.uint8), 1, 1, "mono"),
    "mono16": _Layout(np.dtype(np.uint16), 1, 1, "mono"),
    "16UC1": _Layout(np.dtype(np.uint16), 1, 1, "mono"),
    "32FC1": _Layout(np.dtype(np.float32), 1, 1, "mono"),
}
SUPPORTED_ENCODINGS = tuple(_LAYOUTS)
_NATIVE_BIG_ENDIAN = sys.byteorder == "big"


def _layout(encoding: str) -> _Layout:
    try:
        return _LAYOUTS[encoding]
    except KeyError:
        raise ImageConversionError(
            f"unsupported image encoding {encoding!r}; supported: "
            f"{', '.join(SUPPORTED_ENCODINGS)}") from None


def image_to_numpy(msg: Image, copy: bool = True) -> tuple[np.ndarray, str]:
    """Convert a sensor_msgs/Image to ``(array, channel_order)``.

    ``array`` is H x W x 3 for colour encodings (alpha dropped) and H x W for single-channel
    ones; ``channel_order`` is 'rgb', 'bgr' or 'mono'. Raises :class:`ImageConversionError`
    for an unsupported encoding, a zero width or height, a ``step`` shorter than one row, or a
    ``data`` length other than ``step * height``.

    ``copy=False``: where the message's bytes already are that array (no row padding, no alpha,
    native byte order), a read-only view of them instead of a copy; the node's frames take it
    (copying 921 kB gives up the GIL and then waits to get it back beside the other stages).
    """
    layout = _layout(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f"empty image: {width}x{height} ({msg.encoding})")
    pixel_bytes = layout.channels * layout.dtype.itemsize
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is shorter than one row of {width} {msg.encoding} pixels "
            f"({row_bytes} bytes)")
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    if buffer.size != step * height:
        raise ImageConversionError(
            f"data length mismatch: {buffer.size} bytes, expected step * height = "
            f"{step} * {height} = {step * height} ({width}x{height} {msg.encoding})")

    dtype = layout.dtype
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    # Strided view over the message bytes (padding skipped), then one copy that drops alpha,
    # makes the array contiguous, native-endian and independent of the message.
    shape = (height, width, layout.channels)
    strides = (step, pixel_bytes, dtype.itemsize)
    view = np.ndarray(shape=shape, dtype=dtype, buffer=buffer, strides=strides)
    view = view[:, :, :layout.kept] if layout.kept > 1 else view[:, :, 0]
    if not copy and view.flags.c_contiguous and view.dtype == layout.dtype:
        view.flags.writeable = False
        return view, layout.order
    array = np.array(view, dtype=layout.dtype, order="C", copy=True)
    return array, layout.order


def image_to_rgb(msg: Image) -> np.ndarray:
    """Convert a colour or mono8 image to an H x W x 3 uint8 RGB array.

    mono8 is replicated to three channels. Depth encodings (16-bit, float) raise
    :class:`ImageConversionError`.
    """
    array, order = image_to_numpy(msg)
    if order == "rgb":
        return array
    if order == "bgr":
        return np.ascontiguousarray(array[:, :, ::-1])
    if array.dtype != np.uint8:
        raise ImageConversionError(
            f"cannot convert a {msg.encoding} image to RGB (not a colour or mono8 image)")
    return np.repeat(array[:, :, None], 3, axis=2)


def numpy_to_image(array: np.ndarray, encoding: str, header=None) -> Image:
    """Build a sensor_msgs/Image from a numpy array (no row padding, native byte order).

    H x W x 3 for rgb8/bgr8, H x W x 4 for rgba8/bgra8, H x W (or H x W x 1) for the
    single-channel encodings; the dtype must match the encoding exactly (no silent casts).
    ``header`` (std_msgs/Header) is copied into the message when given.
    """
    layout = _layout(encoding)
    array = np.asarray(array)
    if array.ndim == 3 and layout.channels == 1 and array.shape[2] == 1:
        array = array[:, :, 0]
    expected_ndim = 2 if layout.channels == 1 else 3
    if array.ndim != expected_ndim or (expected_ndim == 3 and array.shape[2] != layout.channels):
        wanted = "H x W" if layout.channels == 1 else f"H x W x {layout.channels}"
        raise ImageConversionError(
            f"array of shape {array.shape} does not fit encoding {encoding!r} ({wanted})")
    if array.dtype != layout.dtype:
        raise ImageConversionError(
            f"array dtype {array.dtype} does not fit encoding {encoding!r} ({layout.dtype})")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ImageConversionError(f"empty image: {width}x{height} ({encoding})")

    msg = Image()
    if header is not None:
        msg.header = header
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = _NATIVE_BIG_ENDIAN
    msg.step = width * layout.channels * layout.dtype.itemsize
    # bytes assignment is ~300x faster than assigning the array itself (see PYPI_ROS2.md).
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg
