"""RViz markers off the critical path: built on their own thread from the newest result, at most
marker_rate times a second, so a slow marker build never delays /human/wholebody or /tf."""
from __future__ import annotations

import threading
import time

from h4w_ros import messages
from h4w_ros.frames import person_key
from h4w_ros.hand_messages import delete_hand_markers, hand_arrow_markers
from h4w_ros.raw_points import RawPointsEncoder
from h4w_ros.stages import WorkTimes, name_os_thread

COARSE_TRIANGLES = 3000  # marker_mesh coarse: the display mesh's size


def display_faces(estimator, marker_mesh: str):
    """The triangles the mesh marker draws: all of SMPL-X ('full'), or ('coarse') a display mesh
    whose corners are vertices of the full posed mesh (derived once, no second posing)."""
    if marker_mesh == "full":
        return estimator.faces
    from h4w_core.io.display_mesh import coarse_faces

    template = estimator.body_model.layer.v_template.detach().cpu().numpy()
    return coarse_faces(template, estimator.faces, max_triangles=COARSE_TRIANGLES)


class MarkerThread:
    """Publishes mesh/skeleton markers (and DELETEs for people gone) for the newest offered result."""

    def __init__(self, node):
        self.node = node
        self.times = WorkTimes()
        self.name = "markers"
        self._latest = None  # (header, results, hand states) not drawn yet
        self._previous_keys: set[str] = set()
        self.encoder = RawPointsEncoder()  # mesh and skeleton points as arrays, not Point objects
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="h4w_markers", daemon=True)
        self._thread.start()

    def offer(self, header, results, hands) -> None:
        """The newest result and its (left, right) hand states per person, as published; an
        undrawn older one is simply replaced."""
        with self._cond:
            self._latest = (header, results, hands)
            self._cond.notify()

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        name_os_thread()
        next_time = 0.0
        while True:
            with self._cond:
                while self._running and self._latest is None:
                    self._cond.wait(timeout=0.5)
                if not self._running:
                    return
            delay = next_time - time.monotonic()
            if delay > 0:  # at most marker_rate frames a second
                time.sleep(delay)
            with self._cond:
                if not self._running:
                    return
                latest, self._latest = self._latest, None
            if latest is None:
                continue
            self.times.start()
            try:
                self._publish(*latest)
            except Exception as exc:  # never let a marker problem stop the markers for good
                if not self._running:
                    return
                self.node.log.report(f"markers:{type(exc).__name__}", f"markers not published: {type(exc).__name__}: {exc}", "error")
            self.times.stop()
            next_time = time.monotonic() + 1.0 / self.node.config.marker_rate

    def _publish(self, header, results, hands) -> None:
        node, config = self.node, self.node.config
        estimator, publisher = node.estimator, node.pubs.get("markers")
        if estimator is None or publisher is None:
            return
        keys = [person_key(r.track_id, i) for i, r in enumerate(results)]
        gone = sorted(self._previous_keys - set(keys))
        self._previous_keys = set(keys)
        if not config.publish_markers:
            return
        markers = messages.delete_markers(header, gone) + delete_hand_markers(header, gone)
        points = []
        for i, (r, key) in enumerate(zip(results, keys)):
            colour = r.track_id if r.track_id >= 0 else i
            points += messages.person_marker_points(r, header, key, node.display_faces, estimator.skeleton_parents, colour,
                                                    config.marker_lifetime, config.marker_face_stride)
        markers += [marker for marker, _ in points]
        markers += hand_arrow_markers(header, list(zip(results, hands)), lambda r, i: person_key(r.track_id, i), config.marker_lifetime)
        if markers:
            publisher.publish(self.encoder.encode(messages.marker_array(markers), [(m, "points", p) for m, p in points]))
