"""TracedByBatch: one trace per batch size that gives eager's outputs, and eager when a trace cannot."""
from __future__ import annotations

import logging
from typing import NamedTuple

import pytest
import torch
from torch import nn

from h4w_core.model.tracing import TracedByBatch


class Pair(NamedTuple):
    total: torch.Tensor
    scaled: torch.Tensor


class ShapeReading(nn.Module):
    """Reads the batch size from a shape, as smplx does (a trace bakes it in)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> Pair:
        ones = torch.ones(x.shape[0], 1)
        return Pair(total=x.sum(dim=1, keepdim=True) + ones, scaled=y * 2.0)


class Noisy(nn.Module):
    """Random outputs: its trace never reproduces the eager call it was checked against."""

    def forward(self, x: torch.Tensor) -> Pair:
        return Pair(total=x + torch.rand_like(x), scaled=x)


def test_each_batch_size_gets_its_own_trace_equal_to_eager():
    module = ShapeReading()
    traced = TracedByBatch(module, Pair)
    for batch in (1, 3, 1, 3):
        x, y = torch.randn(batch, 5), torch.randn(batch, 2)
        out = traced(x, y)
        assert isinstance(out, Pair)
        for a, b in zip(out, module(x, y)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    graphs = traced._graphs
    assert {key[0] for key in graphs} == {1, 3}
    assert all(isinstance(g, torch.jit.ScriptModule) for g in graphs.values())


def test_a_trace_that_disagrees_with_eager_runs_eager_from_then_on(caplog):
    traced = TracedByBatch(Noisy(), Pair)
    with caplog.at_level(logging.WARNING):
        traced(torch.zeros(2, 3))
    assert "differ from eager" in caplog.text
    assert traced._graphs[(2, torch.device("cpu"), torch.float32)] is None
    assert isinstance(traced(torch.zeros(2, 3)), Pair)


def test_a_failing_trace_falls_back_to_eager_and_says_so(caplog):
    class Untraceable(nn.Module):
        def forward(self, x: torch.Tensor) -> Pair:
            return Pair(total=torch.tensor(x.tolist()), scaled=x)  # tolist: values leave the graph

    module = Untraceable()
    traced = TracedByBatch(module, Pair)

    def broken_trace(*args, **kwargs):
        raise RuntimeError("cannot trace")

    with caplog.at_level(logging.WARNING), pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.jit, "trace", broken_trace)
        first = traced(torch.ones(2, 2))
    assert "runs eager" in caplog.text and "cannot trace" in caplog.text
    assert traced._graphs[(2, torch.device("cpu"), torch.float32)] is None
    second = traced(torch.full((2, 2), 3.0))  # eager from then on: follows the input
    torch.testing.assert_close(first.total, torch.ones(2, 2))
    torch.testing.assert_close(second.total, torch.full((2, 2), 3.0))


def test_a_call_with_non_finite_outputs_does_not_decide_the_trace():
    """Nothing can be checked against NaN or inf: that call runs eager and a later one traces."""
    traced = TracedByBatch(ShapeReading(), Pair)
    key = (2, torch.device("cpu"), torch.float32)
    out = traced(torch.full((2, 3), float("nan")), torch.ones(2, 1))
    assert torch.isnan(out.total).all() and key not in traced._graphs
    x, y = torch.randn(2, 3), torch.randn(2, 1)
    torch.testing.assert_close(traced(x, y).total, x.sum(dim=1, keepdim=True) + 1.0)
    assert isinstance(traced._graphs[key], torch.jit.ScriptModule)


def test_warm_up_traces_posing_for_each_person_count(standin_estimator):
    standin_estimator.warm_up_posing(3)
    graphs = standin_estimator.posing._graphs
    for count in (1, 2, 3):
        assert isinstance(graphs[(count, torch.device("cpu"), torch.float32)], torch.jit.ScriptModule)
