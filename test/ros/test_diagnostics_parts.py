"""h4w_ros.diagnostics: images lost in transport judged from stamps, and per-cause log throttling."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from ros_support import require_rclpy

require_rclpy()

from h4w_ros.diagnostics import CauseLog, TransportLoss  # noqa: E402

PERIOD_NS = 33_333_333  # a 30 Hz camera


def stamps(count: int, keep=lambda i: True, jitter_ns: float = 0.0, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(i * PERIOD_NS + rng.normal(0.0, jitter_ns)) + 10**18 for i in range(count) if keep(i)]


def fed(values) -> TransportLoss:
    loss = TransportLoss()
    for v in values:
        loss.add(v)
    return loss


def test_a_complete_jittery_stream_has_no_loss():
    loss = fed(stamps(150, jitter_ns=3e6))
    assert loss.camera_period_s() == pytest.approx(PERIOD_NS * 1e-9, rel=0.1)
    assert loss.lost_fraction() < 0.1


@pytest.mark.parametrize("keep_share", [0.5, 0.75])
def test_random_losses_are_estimated(keep_share):
    rng = np.random.default_rng(1)
    kept = rng.random(600) < keep_share
    loss = fed(stamps(600, keep=lambda i: kept[i], jitter_ns=2e6))
    assert loss.lost_fraction() == pytest.approx(1.0 - keep_share, abs=0.1)


def test_too_few_stamps_or_a_jump_back_say_nothing():
    assert fed(stamps(10)).lost_fraction() is None
    loss = fed(stamps(100))
    loss.add(10**18)  # the clock went back (a looping bag): start afresh
    assert loss.lost_fraction() is None


def test_cause_log_throttles_per_cause_and_summarises(caplog):
    log = CauseLog(logging.getLogger("h4w_test_cause_log"), period_s=3600.0)
    with caplog.at_level(logging.WARNING, logger="h4w_test_cause_log"):
        for i in range(50):
            log.report("bad_image", f"image {i} rejected")
        log.report("other", "another cause")
        assert caplog.messages == ["image 0 rejected", "another cause"]
        log._last["bad_image"] -= 7200.0  # the period has passed
        log.report("bad_image", "image 51 rejected")
    assert caplog.messages[-1].startswith("image 51 rejected (49 more of this kind")


def test_a_failing_node_callback_is_reported_throttled_and_never_raised(caplog):
    """What the node's subscriptions and timers run: an exception becomes one throttled error line,
    never an exception in the executor (rclpy's EventsExecutor logs each of those as FATAL)."""
    from types import SimpleNamespace

    from h4w_ros.node import WholeBodyNode

    owner = SimpleNamespace(log=CauseLog(logging.getLogger("h4w_test_guarded"), period_s=3600.0))
    seen = []

    def on_image(msg):
        seen.append(msg)
        raise ValueError(f"bad image {msg}")

    guarded = WholeBodyNode._guarded(owner, on_image)
    with caplog.at_level(logging.WARNING, logger="h4w_test_guarded"):
        for i in range(5):
            guarded(i)
    assert seen == [0, 1, 2, 3, 4]
    assert caplog.messages == ["callback failed: ValueError: bad image 0"]
    assert guarded.__name__ == "on_image"
