"""Serialise a message whose large ``geometry_msgs/Point[]`` fields are numpy arrays, without one
Point object per point.

Why: rclpy converts a Point[] element by element (a Python object each, its x, y, z read one by
one); a coarse mesh marker is 9,000 points, so 4 persons' markers cost ~15 ms of GIL-held
Python per marker frame, slowing every other stage. A publisher takes serialized bytes as well
(``Publisher.publish(bytes)``), and the middleware's own serializer is reachable
(``rclpy.serialization.serialize_message``), so the bytes are made in two steps:

1. the message is serialized by the middleware with ONE sentinel point in each array field,
   so every header, string, colour and alignment is the middleware's own;
2. each sentinel (a 24-byte pattern that real data never holds) is replaced by the array's
   bytes, and its sequence length 1 by the array's length.

Step 2 is exact when the bytes after an array do not depend on where it ends: true for CDR as
ROS 2 middlewares use it (a Point is 24 bytes, so n points instead of one shift the rest by a
multiple of 8, the largest alignment). Rather than trusting that for every middleware and
message version, :class:`RawPointsEncoder` compares its bytes with the middleware's for a test
message once, at construction (read back, the bytes give the same message as the middleware's
own), and falls back to plain messages (``fast`` False) if they do not.
"""
from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence

import numpy as np
from geometry_msgs.msg import Point

from h4w_ros.messages import points_from_array

LOG = logging.getLogger(__name__)

_ONE = struct.pack("<I", 1)


def _sentinel(k: int) -> tuple[float, float, float]:
    """Point values of slot k: two huge odd doubles no pose, colour, stamp or text matches, and k."""
    return (-1.2345678901234567e300, 9.876543210987654e299, k + 0.123456789)


def _pattern(k: int) -> bytes:
    return struct.pack("<3d", *_sentinel(k))


class RawPointsEncoder:
    """``encode(msg, slots)``: bytes of ``msg`` as the middleware serializes it, with each slot's
    Point[] field holding the (N, 3) array given for it; the fields are left empty after.

    ``fast`` is False when the self-check at construction failed: ``encode`` then fills the
    fields with Point objects and returns the message itself (``publish`` takes either); so it
    does for a message whose layout it cannot read unambiguously.
    """

    def __init__(self, serialize: Callable[[object], bytes] | None = None):
        """serialize: the middleware's serializer (rclpy.serialization.serialize_message)."""
        from rclpy.serialization import deserialize_message, serialize_message

        self._serialize = serialize or serialize_message
        self._deserialize = deserialize_message
        self.fast = self._self_check()

    def encode(self, msg, slots: Sequence[tuple[object, str, np.ndarray]]):
        """slots: (message object inside ``msg``, its Point[] field name, (N, 3) points)."""
        arrays = [np.ascontiguousarray(np.asarray(points, dtype="<f8").reshape(-1, 3)) for _, _, points in slots]
        if self.fast and all(a.shape[0] > 0 for a in arrays):  # an empty slot has no point to stand in for it
            try:
                return self._encode_fast(msg, slots, arrays)
            except ValueError:  # this message's layout cannot be read unambiguously: send it plain
                pass
        for (owner, field, _), a in zip(slots, arrays):
            setattr(owner, field, points_from_array(a))
        return msg

    def _encode_fast(self, msg, slots, arrays) -> bytes:
        template = self._template(msg, slots)
        return _splice(template, arrays, [_locate(template, k) for k in range(len(slots))])

    def _template(self, msg, slots) -> bytes:
        """msg serialized with sentinel point k as the only point of slot k (the slots left empty after)."""
        for k, (owner, field, _) in enumerate(slots):
            x, y, z = _sentinel(k)
            setattr(owner, field, [Point(x=x, y=y, z=z)])
        try:
            return self._serialize(msg)
        finally:
            for owner, field, _ in slots:
                setattr(owner, field, [])

    def _self_check(self) -> bool:
        """A test MarkerArray (odd string lengths, a DELETE between arrays, colours and text after
        the points) read back by the middleware from these bytes and from its own serialization:
        the same message both ways. (Bytes are not compared: the middleware leaves alignment
        padding unwritten.)"""
        try:
            from builtin_interfaces.msg import Duration
            from std_msgs.msg import ColorRGBA
            from visualization_msgs.msg import Marker, MarkerArray

            rng = np.random.default_rng(7)
            markers, slots = [], []
            for n, frame, ns in ((7, "cam", "a"), (4, "camera_optical_frame", "h4w_skeleton"), (1, "x", "ns_odd")):
                m = Marker(ns=ns, id=n, type=Marker.TRIANGLE_LIST, lifetime=Duration(sec=1, nanosec=5))
                m.header.frame_id = frame
                m.pose.orientation.w = 1.0
                m.color = ColorRGBA(r=0.5, g=0.25, b=1.0, a=0.8)
                m.colors = [ColorRGBA(r=0.1, g=0.2, b=0.3, a=0.4)] * (n % 3)
                m.text = ns * 3
                markers += [m, Marker(ns="gone", id=99, action=Marker.DELETE)]
                slots.append((m, "points", rng.normal(size=(n, 3))))
            msg = MarkerArray(markers=markers)
            fast = self._encode_fast(msg, slots, [np.asarray(p, dtype="<f8") for _, _, p in slots])
            for owner, field, points in slots:
                setattr(owner, field, points_from_array(points))
            if self._deserialize(fast, MarkerArray) == self._deserialize(self._serialize(msg), MarkerArray):
                return True
            LOG.info("raw point serialization does not match the middleware's here: markers go as plain messages")
        except Exception as exc:  # any surprise means: use plain messages
            LOG.info("raw point serialization unavailable (%s: %s): markers go as plain messages", type(exc).__name__, exc)
        return False


def _locate(template: bytes, k: int) -> tuple[int, int]:
    """Where slot k's sequence length (1) and its sentinel point are. The length is right before the
    point, or before 4 bytes of alignment padding. The middleware leaves padding unwritten, so when
    both read as 1 it is ambiguous (never for a Marker, whose points need no padding): ValueError,
    and a plain message instead."""
    at = template.find(_pattern(k))
    if at < 0:
        raise ValueError(f"sentinel point {k} not found in the serialized message")
    right_before, before_padding = template[at - 4:at] == _ONE, template[at - 8:at - 4] == _ONE
    if right_before == before_padding:
        raise ValueError(f"the sequence length of sentinel point {k} is {'ambiguous' if right_before else 'not found'}")
    return (at - 4 if right_before else at - 8), at


def _splice(template: bytes, arrays: Sequence[np.ndarray], places: Sequence[tuple[int, int]]) -> bytes:
    """The template with sentinel point k (at places[k] = (length offset, point offset)) replaced by
    arrays[k] and its sequence length by len(arrays[k])."""
    pieces, start = [], 0
    for k in sorted(range(len(arrays)), key=lambda i: places[i]):
        (length_at, at), a = places[k], arrays[k]
        pieces += [template[start:length_at], struct.pack("<I", a.shape[0]), template[length_at + 4:at], a.tobytes()]
        start = at + 24
    pieces.append(template[start:])
    return b"".join(pieces)
