"""Hand states (h4w_core.people.hands) -> h4w_ros/HandState, HandStateArray and RViz ARROW markers.

Conversion only. ``pointing_origin`` / ``pointing_direction`` stay in the frame of the joints they
came from: for a PersonResult the camera optical frame, so the array's and the markers' header is
the image's header.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Vector3
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker

from h4w_core.people.hands import HandState as CoreHandState
from h4w_core.people.hands import HandStateConfig, hand_states
from h4w_ros.msg import HandState, HandStateArray

POINTING_NS = "h4w_pointing"
ARROW_LENGTH_M = 0.3  # drawn length of a pointing ray
# RGBA per state: pointing stands out; the others are quieter
STATE_COLOURS: dict[str, tuple[float, float, float, float]] = {
    "pointing": (1.0, 0.2, 0.1, 1.0),
    "open": (0.2, 0.8, 0.2, 0.8),
    "fist": (0.2, 0.4, 1.0, 0.8),
    "pinch": (1.0, 0.8, 0.1, 0.8),
    "other": (0.6, 0.6, 0.6, 0.6),
}

ResultWithStates = tuple[object, tuple[CoreHandState, CoreHandState]]  # (PersonResult, (left, right))


def person_hand_states(result, config: HandStateConfig | None = None) -> tuple[CoreHandState, CoreHandState]:
    """(left, right) hand states of a PersonResult (its 137 joints, camera frame); default thresholds."""
    return hand_states(result.joints, HandStateConfig() if config is None else config)


def hand_state_message(state: CoreHandState, track_id: int) -> HandState:
    """One h4w_ros/HandState from a core HandState (header-less; frame of the joints)."""
    (ox, oy, oz), (dx, dy, dz) = np.asarray(state.pointing_origin, float).tolist(), np.asarray(state.pointing_direction, float).tolist()
    return HandState(
        track_id=int(track_id), side=str(state.side), state=str(state.state), confidence=float(state.confidence),
        pointing_origin=Point(x=ox, y=oy, z=oz), pointing_direction=Vector3(x=dx, y=dy, z=dz),
        aperture=float(state.aperture_m), curls=np.asarray(state.curls, dtype=np.float32).reshape(5))


def set_hand_fields(msg, states: tuple[CoreHandState, CoreHandState], track_id: int):
    """Fill WholeBodyMesh.left_hand / right_hand from (left, right) states; returns ``msg``."""
    left, right = states
    msg.left_hand = hand_state_message(left, track_id)
    msg.right_hand = hand_state_message(right, track_id)
    return msg


def hand_state_array(header: Header, results_with_states: Sequence[ResultWithStates]) -> HandStateArray:
    """HandStateArray: per person its left then right hand, people in the given order."""
    hands = []
    for result, (left, right) in results_with_states:
        track_id = int(result.track_id)
        hands += [hand_state_message(left, track_id), hand_state_message(right, track_id)]
    return HandStateArray(header=header, hands=hands)


def hand_marker_id(key: str, side: str) -> int:
    """Stable non-negative int32 marker id per person key and side (left even, right odd)."""
    if key.isdigit():
        base = int(key)
    elif key.startswith("p") and key[1:].isdigit():
        base = int(key[1:]) + 1_000_000
    else:
        base = zlib.crc32(key.encode()) % (1 << 29)
    return (base % (1 << 30)) * 2 + (1 if side == "right" else 0)


def _duration(lifetime) -> Duration:
    if isinstance(lifetime, Duration):
        return lifetime
    seconds = max(float(lifetime), 0.0)
    return Duration(sec=int(seconds), nanosec=int(round((seconds % 1.0) * 1e9)) % 1_000_000_000)


def hand_arrow_markers(
    header: Header,
    results_with_states: Sequence[ResultWithStates],
    key_fn: Callable[[object, int], str],
    lifetime,
    length_m: float = ARROW_LENGTH_M,
) -> list[Marker]:
    """One ARROW marker (ns ``h4w_pointing``) per hand along its pointing ray, whatever its state,
    coloured by state (STATE_COLOURS); an unmeasurable hand (confidence 0, no ray) gets a DELETE
    for its id instead, so its old arrow does not linger.

    ``key_fn(result, index)`` gives the person key of a result (e.g. frames.person_key(result.track_id,
    index)); ids come from :func:`hand_marker_id`. ``lifetime``: seconds or a Duration.
    """
    life = _duration(lifetime)
    out = []
    for index, (result, states) in enumerate(results_with_states):
        key = key_fn(result, index)
        for state in states:
            marker_id = hand_marker_id(key, state.side)
            direction = np.asarray(state.pointing_direction, dtype=np.float64)
            if not (state.confidence > 0.0 and np.all(np.isfinite(direction)) and np.linalg.norm(direction) > 0.5):
                out.append(Marker(header=header, ns=POINTING_NS, id=marker_id, action=Marker.DELETE))
                continue
            start = np.asarray(state.pointing_origin, dtype=np.float64)
            end = start + length_m * direction
            m = Marker(header=header, ns=POINTING_NS, id=marker_id, type=Marker.ARROW, action=Marker.ADD)
            m.pose.orientation.w = 1.0
            m.points = [Point(x=float(start[0]), y=float(start[1]), z=float(start[2])),
                        Point(x=float(end[0]), y=float(end[1]), z=float(end[2]))]
            m.scale.x, m.scale.y, m.scale.z = 0.01, 0.02, 0.03  # shaft diameter, head diameter, head length (m)
            r, g, b, a = STATE_COLOURS.get(state.state, STATE_COLOURS["other"])
            m.color = ColorRGBA(r=r, g=g, b=b, a=a)
            m.lifetime = life
            out.append(m)
    return out


def delete_hand_markers(header: Header, keys: Sequence[str]) -> list[Marker]:
    """DELETE the arrows of people no longer seen."""
    return [Marker(header=header, ns=POINTING_NS, id=hand_marker_id(key, side), action=Marker.DELETE)
            for key in keys for side in ("left", "right")]
