"""Shared bits of the command-line tools: one error format, one logging set-up, a guarded image
reader and all-or-nothing output files."""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

MAX_IMAGE_PIXELS = 100_000_000  # 100 megapixels: far beyond any camera frame these tools are meant for
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (they carry the size); C4 (DHT), C8 (JPG) and CC (DAC) are not frames
JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def non_negative_number(text: str) -> float:
    """argparse type: a finite number >= 0 (seconds, milliseconds), as a float."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def fail(prog: str, code: int, message: object) -> int:
    """Print 'prog: error: message' (one line) to stderr and return the exit code."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def setup_logging(verbose: bool = False, default: int = logging.WARNING) -> None:
    logging.basicConfig(level=logging.INFO if verbose else default, format=LOG_FORMAT)


class ImageReadError(ValueError):
    """An input image that is missing, unreadable, not an image or too large to decode."""


def _png_size(head: bytes) -> tuple[int, int] | None:
    # signature, then the IHDR chunk: length (4), b"IHDR", width (4), height (4), big-endian
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _jpeg_size(f) -> tuple[int, int] | None:
    """Width and height from the first start-of-frame segment, skipping the segments before it."""
    f.seek(2)
    while True:
        byte = f.read(1)
        while byte and byte != b"\xff":  # tolerate junk between segments, as decoders do
            byte = f.read(1)
        while byte == b"\xff":  # fill bytes
            byte = f.read(1)
        if not byte:
            return None
        marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # stand-alone markers: no length
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        length_bytes = f.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if length < 2:
            return None
        if marker in JPEG_SOF_MARKERS:
            frame = f.read(5)  # precision, height, width
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return (width, height) if width and height else None  # height 0: defined later (DNL)
        f.seek(length - 2, os.SEEK_CUR)


def image_size_from_header(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) as a PNG, JPEG or BMP header states it, reading only the header; None for
    other formats or a header that cannot be parsed (the decoder then decides)."""
    with open(path, "rb") as f:
        head = f.read(32)
        if head.startswith(PNG_SIGNATURE):
            return _png_size(head)
        if head.startswith(b"\xff\xd8"):
            return _jpeg_size(f)
        if head.startswith(b"BM") and len(head) >= 26:
            width, height = struct.unpack("<ii", head[18:26])
            return abs(width), abs(height)
    return None


def _too_large(path: Path, width: int, height: int, max_pixels: int) -> ImageReadError:
    return ImageReadError(f"image {path} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), "
                          f"more than the limit of {max_pixels / 1e6:g} megapixels")


@contextlib.contextmanager
def _decoder_messages() -> Iterator[list[str]]:
    """Collect what native code writes to file descriptor 2 meanwhile (filled in on exit), so that a
    decoder's complaints join the one-line error instead of preceding it. No-op without a fd 2."""
    messages: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield messages
        return
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            messages.append(sink.read(4096).decode("utf-8", "replace"))


def read_image(path: str | os.PathLike, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """A colour image as BGR uint8 (cv2.IMREAD_COLOR), or ImageReadError with a one-line reason.

    The size a PNG, JPEG or BMP header claims is checked before decoding, so a small file claiming
    a huge picture is refused without allocating it; other formats are checked after decoding
    (OpenCV itself refuses more than 2^30 pixels, OPENCV_IO_MAX_IMAGE_PIXELS).
    """
    import cv2  # kept local: the other tools sharing this module need no OpenCV

    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"cannot read image {path}: no such file")
    if not path.is_file():
        raise ImageReadError(f"cannot read image {path}: not a file")
    try:
        size = image_size_from_header(path)
    except OSError as exc:
        raise ImageReadError(f"cannot read image {path}: {exc.strerror or exc}") from None
    if size is not None and size[0] * size[1] > max_pixels:
        raise _too_large(path, *size, max_pixels)
    with _decoder_messages() as messages:  # libpng/libjpeg and OpenCV print to the C stderr
        try:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        except cv2.error as exc:
            reason = getattr(exc, "err", None) or str(exc)
            if "CV_IO_MAX_IMAGE_PIXELS" in reason:  # a header (of a format not checked above) claiming > 2^30 pixels
                reason = (f"it has more pixels than OpenCV decodes (OPENCV_IO_MAX_IMAGE_PIXELS), "
                          f"and the limit here is {max_pixels / 1e6:g} megapixels")
            raise ImageReadError(f"cannot decode image {path}: {reason}") from None
    said = " ".join(" ".join(messages).split())
    if image is None:
        raise ImageReadError(f"cannot read image {path} (unreadable or not an image{': ' + said if said else ''})")
    if said:
        logging.getLogger(__name__).warning("decoding %s: %s", path, said)
    if image.shape[0] * image.shape[1] > max_pixels:
        raise _too_large(path, image.shape[1], image.shape[0], max_pixels)
    return image


class StagedOutputs:
    """Output files of one run, all or nothing.

    stage(path) creates the missing parent folders and returns a hidden temporary sibling to
    write instead of path; commit() moves every staged file into place and returns the final
    paths; discard() (on any failure, commit included) removes what this run wrote: temporary
    files, files already moved into place and the folders it created, if empty.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []
        self._committed: list[Path] = []
        self._created_dirs: list[Path] = []

    def stage(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        missing = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._created_dirs.extend(missing)
        tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        self._staged.append((tmp, path))
        return tmp

    def commit(self) -> list[Path]:
        for tmp, final in self._staged:
            os.replace(tmp, final)
            self._committed.append(final)
        self._staged = []
        return list(self._committed)

    def discard(self) -> None:
        for path in [tmp for tmp, _ in self._staged] + self._committed:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                logging.getLogger(__name__).warning("could not remove %s: %s", path, exc)
        for folder in sorted(self._created_dirs, key=lambda d: len(d.parts), reverse=True):  # children first
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty (someone else wrote there) or already gone
        self._staged, self._committed, self._created_dirs = [], [], []
