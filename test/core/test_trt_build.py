"""TensorRT engine builder, engine cache, CLI and runtime.

Builder tests run for real with whichever TensorRT imports (in CI: tensorrt-rtx-cu12 from
requirements-trt.txt, which parses and builds on a CPU-only machine) and skip when none does.
Execution tests need CUDA and skip without it. Compatibility branches that no installed TensorRT
exercises (8.x network flags, 8.x parser errors, the 8.5 version floor) are checked against small fakes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from h4w_core.backends import trt_build, trt_compat
from h4w_core.backends.trt_build import (
    BuildSettings,
    BuildSettingsError,
    EngineCache,
    build_engine_bytes,
)
from h4w_core.backends.trt_compat import (
    EngineBuildError,
    NoGpuError,
    OnnxParseError,
    PrecisionNotSupported,
    TensorRTError,
    TensorRTNotInstalled,
    TrtApi,
    cuda_available,
    tensorrt_available,
)
from h4w_core.cli import build_engine as cli

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

HAVE_TRT = tensorrt_available()
HAVE_CUDA = cuda_available()
requires_trt = pytest.mark.skipif(
    not HAVE_TRT,
    reason="neither `tensorrt` nor `tensorrt_rtx` imports (pip install -r requirements-trt.txt)",
)
gpu = pytest.mark.skipif(
    not (HAVE_TRT and HAVE_CUDA),
    reason="engine execution needs TensorRT and a CUDA GPU (torch.cuda.is_available() is False)",
)


# ------------------------------------------------------------------------------ tiny ONNX models
def make_tiny_onnx(path, seed=0, dynamic_batch=True):
    """image (B,3,8,8) -> Conv3x3 -> Relu -> [Flatten -> Gemm -> 'out' (B,5), ReduceMean -> 'feat' (B,4)]."""
    rng = np.random.default_rng(seed)
    batch = "batch" if dynamic_batch else 2
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3, "conv_w"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32) * 0.1, "conv_b"),
        numpy_helper.from_array(rng.standard_normal((256, 5)).astype(np.float32) * 0.1, "fc_w"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float32) * 0.1, "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["out"], name="fc"),
        helper.make_node("ReduceMean", ["r"], ["feat"], name="pool", axes=[2, 3], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, 5]),
         helper.make_tensor_value_info("feat", TensorProto.FLOAT, [batch, 4])],
        initializer=inits,
    )
    _save(graph, path)
    return str(path)


def make_fp16_onnx(path):
    """x (B,4) fp16 @ W fp16 -> y fp16: a network that itself computes in fp16 (strongly typed)."""
    w = numpy_helper.from_array((np.eye(4) * 0.5).astype(np.float16), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "fp16",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["batch", 4])],
        initializer=[w],
    )
    _save(graph, path)
    return str(path)


def make_custom_op_onnx(path):
    """A Relu followed by a node of a made-up domain/op that no TensorRT parser knows."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu0"),
         helper.make_node("FancyWarp", ["r"], ["y"], name="my_custom_node", domain="com.h4w.test")],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    _save(graph, path, extra_opsets=[helper.make_opsetid("com.h4w.test", 1)])
    return str(path)


def make_dynamic_hw_onnx(path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "dyn_hw",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
    )
    _save(graph, path)
    return str(path)


def _save(graph, path, extra_opsets=()):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), *extra_opsets],
                              producer_name="h4w-test")
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    return types.SimpleNamespace(
        tiny=make_tiny_onnx(d / "tiny.onnx"),
        tiny_other=make_tiny_onnx(d / "tiny_other.onnx", seed=1),
        fp16=make_fp16_onnx(d / "fp16.onnx"),
        custom=make_custom_op_onnx(d / "custom.onnx"),
        dyn_hw=make_dynamic_hw_onnx(d / "dyn_hw.onnx"),
    )


SMALL = BuildSettings(precision="fp32", max_batch=4, opt_batch=2, workspace_mib=64)


# --------------------------------------------------------------------------- settings, no TRT
def test_build_settings_validation():
    with pytest.raises(BuildSettingsError, match="precision"):
        BuildSettings(precision="fp8")
    with pytest.raises(BuildSettingsError, match="opt_batch"):
        BuildSettings(max_batch=2, opt_batch=4)
    with pytest.raises(BuildSettingsError, match="workspace"):
        BuildSettings(workspace_mib=0)
    with pytest.raises(BuildSettingsError, match="calibration_tag"):
        BuildSettings(precision="int8", calibrator=object())


def test_tensorrt_missing_is_named_and_says_how_to_install(monkeypatch):
    monkeypatch.delenv(trt_compat.MODULE_ENV, raising=False)
    monkeypatch.setattr(trt_compat, "MODULE_CANDIDATES", ("h4w_no_such_tensorrt",))
    with pytest.raises(TensorRTNotInstalled) as err:
        trt_compat.load_api()
    assert isinstance(err.value, ImportError)
    assert "pip install tensorrt" in str(err.value) and "JetPack" in str(err.value)
    assert not trt_compat.tensorrt_available()


def test_cli_exit_code_without_tensorrt(monkeypatch, models, tmp_path, capsys):
    monkeypatch.setenv(trt_compat.MODULE_ENV, "h4w_no_such_tensorrt")
    rc = cli.main(["--onnx", models.tiny, "--cache-dir", str(tmp_path)])
    assert rc == cli.EXIT_NO_TENSORRT
    err = capsys.readouterr().err.strip()
    assert err.startswith("h4w-build-engine: error: TensorRT is not installed") and "\n" not in err


def test_cli_bad_arguments(models, tmp_path, capsys):
    assert cli.main(["--onnx", models.tiny, "--max-batch", "2", "--opt-batch", "3",
                     "--cache-dir", str(tmp_path)]) == cli.EXIT_USAGE
    assert "opt_batch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["--onnx", models.tiny, "--precision", "fp64"])
    assert exc.value.code == 2


def test_importing_backends_does_not_import_tensorrt():
    code = ("import sys, h4w_core.backends.trt_build, h4w_core.backends.trt_runtime, "
            "h4w_core.cli.build_engine; "
            "print([m for m in ('tensorrt', 'tensorrt_rtx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(HAVE_CUDA, reason="checks the no-GPU error; this machine has CUDA")
def test_runner_without_gpu_raises_no_gpu(tmp_path):
    pytest.importorskip("torch")
    from h4w_core.backends.trt_runtime import TensorRTRunner

    with pytest.raises(NoGpuError, match="CUDA"):
        TensorRTRunner(str(tmp_path / "x.engine"))


# ------------------------------------------------------------------- compat branches (fakes)
def _fake_trt(version, **extra):
    flags = types.SimpleNamespace(EXPLICIT_BATCH=0, STRONGLY_TYPED=1)
    mod = types.SimpleNamespace(
        __name__="tensorrt", __version__=version,
        NetworkDefinitionCreationFlag=flags,
        BuilderFlag=types.SimpleNamespace(FP16=1, INT8=2, TF32=3),
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="ws"),
        **extra,
    )
    return mod


class _Recorder:
    def __init__(self):
        self.calls = []

    def create_network(self, flags):
        self.calls.append(("create_network", flags))
        return "network"


def test_compat_network_flags_across_versions():
    b = _Recorder()
    TrtApi(_fake_trt("8.6.1")).create_network(b)
    TrtApi(_fake_trt("10.3.0")).create_network(b)
    TrtApi(_fake_trt("10.3.0")).create_network(b, strongly_typed=True)
    assert b.calls == [("create_network", 1), ("create_network", 0), ("create_network", 2)]


def test_compat_builder_returning_none_raises():
    failing = types.SimpleNamespace(build_serialized_network=lambda net, cfg: None)
    with pytest.raises(EngineBuildError, match="returned no engine"):
        TrtApi(_fake_trt("10.0.1")).build_serialized(failing, "net", "cfg")


def test_tensorrt_older_than_8_5_is_refused(monkeypatch, models, tmp_path, capsys):
    """Pre-8.5 TensorRT cannot parse the opset-17 export: one-line error naming both versions."""
    with pytest.raises(TensorRTError) as err:
        TrtApi(_fake_trt("8.4.3.1"))
    message = str(err.value)
    assert "8.4.3.1" in message and ">= 8.5" in message and "\n" not in message
    assert not isinstance(err.value, TensorRTNotInstalled)
    assert TrtApi(_fake_trt("8.5.2")).version_tuple == (8, 5, 2)
    rtx = _fake_trt("1.7.1.116")
    rtx.__name__ = "tensorrt_rtx"  # RTX numbers its releases 1.x: no floor applies
    assert TrtApi(rtx).is_rtx

    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt("8.2.5"))
    monkeypatch.setattr(trt_compat, "_API_CACHE", {})
    monkeypatch.setenv(trt_compat.MODULE_ENV, "tensorrt")
    with pytest.raises(TensorRTError, match="8.2.5"):
        trt_compat.load_api()
    assert not trt_compat.tensorrt_available()
    assert cli.main(["--onnx", models.tiny, "--cache-dir", str(tmp_path)]) == cli.EXIT_NO_TENSORRT
    err_line = capsys.readouterr().err.strip()
    assert "TensorRT 8.2.5 is installed" in err_line and "\n" not in err_line


def test_compat_old_parser_errors_resolve_node_names(models):
    class OldError:  # TensorRT 8.x ParserError: index but no node_name()/node_operator()
        def node(self):
            return 1

        def desc(self):
            return "No importer registered for op: FancyWarp"

        def code(self):
            return types.SimpleNamespace(name="UNSUPPORTED_NODE")

    parser = types.SimpleNamespace(num_errors=1, get_error=lambda i: OldError())
    errors = TrtApi(_fake_trt("8.5.2")).parser_errors(parser, models.custom)
    assert errors[0].node_name == "my_custom_node" and errors[0].op_type == "FancyWarp"
    message = str(OnnxParseError(models.custom, errors))
    assert "my_custom_node" in message and "UNSUPPORTED_NODE" in message and "\n" not in message


def test_compat_tensor_name_io():
    """Engine I/O through the tensor-name API (num_io_tensors, get_tensor_profile_shape)."""
    fp32 = types.SimpleNamespace(name="FLOAT")
    modes = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    names = ["image", "out"]
    engine = types.SimpleNamespace(
        num_io_tensors=2,
        get_tensor_name=lambda i: names[i],
        get_tensor_mode=lambda name: modes.INPUT if name == "image" else modes.OUTPUT,
        get_tensor_shape=lambda name: {"image": (-1, 3, 8, 8), "out": (-1, 5)}[name],
        get_tensor_dtype=lambda name: fp32,
        get_tensor_profile_shape=lambda name, p: [(1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8)],
    )
    ios = TrtApi(_fake_trt("8.6.1", TensorIOMode=modes)).io_tensors(engine)
    assert [(t.name, t.is_input, t.shape) for t in ios] == [("image", True, (-1, 3, 8, 8)), ("out", False, (-1, 5))]
    assert ios[0].profile == ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8)) and ios[1].profile is None


def test_runner_feed_validation_without_gpu(monkeypatch):
    """The runner's input checks, on CPU tensors against a fake engine description."""
    torch = pytest.importorskip("torch")
    from h4w_core.backends import trt_runtime
    from h4w_core.backends.trt_compat import InputMismatchError, IOTensor

    monkeypatch.setattr(trt_runtime, "cuda_available", lambda: True)
    runner = trt_runtime.TensorRTRunner("unused.engine", device="cuda:0")
    runner.device = torch.device("cpu")  # validation only; execution needs CUDA
    runner._api = TrtApi(_fake_trt("10.3.0"))
    fp32 = types.SimpleNamespace(name="FLOAT")
    runner._inputs = [
        IOTensor("image", True, fp32, (-1, 3, 8, 8), ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))),
        IOTensor("bbox", True, fp32, (-1, 4), ((1, 4), (2, 4), (4, 4))),
    ]
    runner.is_active = True
    ok = {"image": torch.zeros(2, 3, 8, 8), "bbox": torch.zeros(2, 4)}
    checked = runner._validate(ok)
    assert checked["image"] is ok["image"]
    transposed = runner._validate({"image": ok["image"], "bbox": torch.zeros(4, 2).t()})
    assert transposed["bbox"].is_contiguous()
    bad = [
        ([], "must be a dict"),
        ({"image": ok["image"]}, r"missing \['bbox'\]"),
        ({**ok, "extra": ok["bbox"]}, r"unexpected \['extra'\]"),
        ({**ok, "image": ok["image"].numpy()}, "torch.Tensor"),
        ({**ok, "image": ok["image"].half()}, "dtype torch.float16"),
        ({**ok, "image": torch.zeros(2, 3, 8)}, "rank 4"),
        ({**ok, "image": torch.zeros(2, 1, 8, 8)}, "axis 1"),
        ({"image": torch.zeros(5, 3, 8, 8), "bbox": torch.zeros(5, 4)}, "profile 1..4"),
        ({"image": torch.zeros(2, 3, 8, 8), "bbox": torch.zeros(3, 4)}, "disagree on batch"),
    ]
    for feed, message in bad:
        with pytest.raises(InputMismatchError, match=message):
            runner._validate(feed)
    if not HAVE_CUDA:
        runner.device = torch.device("cuda", 0)
        with pytest.raises(InputMismatchError, match="runner executes on cuda:0"):
            runner._validate(ok)


# ------------------------------------------------------------------------- real builder (TRT)
@requires_trt
def test_parse_build_serialize_tiny_dynamic_batch(models):
    data, seconds = build_engine_bytes(models.tiny, SMALL)
    assert isinstance(data, bytes) and len(data) > 1000
    assert seconds < 60


@requires_trt
def test_engine_cache_miss_then_hit(models, tmp_path, monkeypatch):
    cache = EngineCache(tmp_path / "engines")
    path, hit = cache.get_or_build(models.tiny, SMALL)
    assert not hit and path.is_file() and path.suffix == ".engine"
    meta = cache.read_sidecar(path)
    fields = meta["fields"]
    api = trt_compat.load_api()
    assert fields["trt_flavour"] == api.flavour and fields["trt_version"] == api.version
    assert fields["precision"] == "fp32" and (fields["min_batch"], fields["opt_batch"],
                                              fields["max_batch"]) == (1, 2, 4)
    assert fields["workspace_mib"] == 64 and len(fields["onnx_sha256"]) == 64
    assert fields["device"] == (trt_compat.gpu_identity() or ("cpu-build",))[0]
    assert meta["key"] == path.stem == EngineCache.key_of(fields)
    assert meta["build_seconds"] >= 0 and meta["created"] and meta["engine_bytes"] == path.stat().st_size
    mtime = path.stat().st_mtime_ns

    def no_build(*a, **k):
        raise AssertionError("cache hit must not rebuild")

    monkeypatch.setattr(trt_build, "build_engine_bytes", no_build)
    path2, hit2 = cache.get_or_build(models.tiny, SMALL)
    assert hit2 and path2 == path and path.stat().st_mtime_ns == mtime
    assert cache.read_sidecar(path)["created"] == meta["created"]


@requires_trt
def test_cache_key_changes_with_precision_profile_workspace_and_onnx(models, tmp_path):
    cache = EngineCache(tmp_path)
    base = EngineCache.key_of(cache.key_fields(models.tiny, SMALL))
    variants = [
        cache.key_fields(models.tiny, BuildSettings(precision="fp16", max_batch=4, opt_batch=2, workspace_mib=64)),
        cache.key_fields(models.tiny, BuildSettings(max_batch=8, opt_batch=2, workspace_mib=64)),
        cache.key_fields(models.tiny, BuildSettings(max_batch=4, opt_batch=1, workspace_mib=64)),
        cache.key_fields(models.tiny, BuildSettings(max_batch=4, opt_batch=2, workspace_mib=128)),
        cache.key_fields(models.tiny_other, SMALL),
    ]
    keys = {EngineCache.key_of(f) for f in variants}
    assert base not in keys and len(keys) == len(variants)
    # The timing cache file is not part of the key (it only speeds up the build).
    same = BuildSettings(max_batch=4, opt_batch=2, workspace_mib=64, timing_cache=str(tmp_path / "t"))
    assert EngineCache.key_of(cache.key_fields(models.tiny, same)) == base


@requires_trt
@pytest.mark.parametrize("damage", ["garbage", "fields", "engine", "no_sidecar"])
def test_damaged_cache_entry_is_rebuilt(models, tmp_path, damage):
    cache = EngineCache(tmp_path)
    path, _ = cache.get_or_build(models.tiny, SMALL)
    sidecar = path.with_suffix(".json")
    if damage == "garbage":
        sidecar.write_text("{not json")
    elif damage == "fields":
        meta = json.loads(sidecar.read_text())
        meta["fields"]["trt_version"] = "0.0.0"
        sidecar.write_text(json.dumps(meta))
    elif damage == "engine":
        path.write_bytes(path.read_bytes()[:100])
    else:
        sidecar.unlink()
    path2, hit = cache.get_or_build(models.tiny, SMALL)
    assert not hit and path2 == path
    assert cache.read_sidecar(path)["fields"] == cache.key_fields(models.tiny, SMALL)
    assert cache.get_or_build(models.tiny, SMALL)[1]


@requires_trt
def test_force_rebuilds(models, tmp_path):
    cache = EngineCache(tmp_path)
    cache.get_or_build(models.tiny, SMALL)
    assert not cache.get_or_build(models.tiny, SMALL, force=True)[1]


@requires_trt
def test_unsupported_op_raises_parse_error_naming_node(models):
    with pytest.raises(OnnxParseError) as err:
        build_engine_bytes(models.custom, SMALL)
    assert "my_custom_node" in err.value.node_names
    assert any(e.op_type == "FancyWarp" for e in err.value.errors)
    assert "my_custom_node" in str(err.value) and "FancyWarp" in str(err.value)


@requires_trt
def test_dynamic_non_batch_dims_are_refused(models):
    with pytest.raises(BuildSettingsError, match="beyond the batch axis"):
        build_engine_bytes(models.dyn_hw, SMALL)


@requires_trt
def test_fp16(models):
    api = trt_compat.load_api()
    if api.weakly_typed_precision_flags and not HAVE_CUDA:
        pytest.skip(f"{api.label} needs a GPU to build")
    fp16 = BuildSettings(precision="fp16", max_batch=4, opt_batch=1, workspace_mib=64)
    if not api.weakly_typed_precision_flags:  # TensorRT 11 / RTX: the ONNX must carry fp16
        with pytest.raises(PrecisionNotSupported, match="strongly typed"):
            build_engine_bytes(models.tiny, fp16)
    else:
        assert build_engine_bytes(models.tiny, fp16)[0]
    assert build_engine_bytes(models.fp16, fp16)[0]


@requires_trt
def test_int8_without_calibration_or_qdq_is_refused(models):
    with pytest.raises(PrecisionNotSupported, match="int8"):
        build_engine_bytes(models.tiny, BuildSettings(precision="int8", max_batch=4, workspace_mib=64))


@requires_trt
def test_timing_cache_file(models, tmp_path):
    api = trt_compat.load_api()
    tc = tmp_path / "timing.cache"
    settings = BuildSettings(max_batch=4, opt_batch=2, workspace_mib=64, timing_cache=str(tc))
    build_engine_bytes(models.tiny, settings)
    if api.supports_timing_cache:
        assert tc.is_file() and tc.stat().st_size > 0
        build_engine_bytes(models.tiny, settings)  # loads it back
    else:  # TensorRT-RTX: no build timing cache; accepted and ignored
        assert not tc.exists()


@requires_trt
def test_cli_end_to_end(models, tmp_path, capsys):
    args = ["--onnx", models.tiny, "--max-batch", "4", "--opt-batch", "2", "--workspace-mib", "64",
            "--cache-dir", str(tmp_path / "c"), "--timing-cache", str(tmp_path / "t.cache")]
    assert cli.main(args) == cli.EXIT_OK
    out, err = capsys.readouterr()
    engine = out.strip()
    assert engine.endswith(".engine") and os.path.isfile(engine) and "built" in err
    assert cli.main(args) == cli.EXIT_OK
    out, err = capsys.readouterr()
    assert out.strip() == engine and "cache hit" in err
    assert cli.main(args + ["--force"]) == cli.EXIT_OK and "built" in capsys.readouterr().err

    assert cli.main(["--onnx", models.custom, "--cache-dir", str(tmp_path / "c")]) == cli.EXIT_PARSE
    err = capsys.readouterr().err.strip()
    assert "my_custom_node" in err and "\n" not in err
    assert cli.main(["--onnx", str(tmp_path / "missing.onnx"),
                     "--cache-dir", str(tmp_path / "c")]) == cli.EXIT_USAGE
    assert "not found" in capsys.readouterr().err
    assert cli.main(["--onnx", models.tiny, "--precision", "int8",
                     "--cache-dir", str(tmp_path / "c")]) == cli.EXIT_BUILD
    assert "int8" in capsys.readouterr().err


# ------------------------------------------------------------------------ execution (GPU only)
def _ort_run(onnx_path, feed):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feed)))


@gpu
def test_runner_matches_onnxruntime(models, tmp_path):
    import torch

    from h4w_core.backends.trt_runtime import TensorRTRunner

    path, _ = EngineCache(tmp_path).get_or_build(models.tiny, SMALL)
    with TensorRTRunner(str(path)) as runner:
        assert runner.batch_range() == (1, 4)
        assert set(runner.get_output_metadata()) == {"out", "feat"}
        for batch in (1, 3, 4):
            x = np.random.default_rng(batch).standard_normal((batch, 3, 8, 8)).astype(np.float32)
            got = runner.infer({"image": torch.from_numpy(x).cuda()})
            torch.cuda.synchronize()
            ref = _ort_run(models.tiny, {"image": x})
            for name in ("out", "feat"):
                assert got[name].shape == ref[name].shape and got[name].device.type == "cuda"
                np.testing.assert_allclose(got[name].cpu().numpy(), ref[name], atol=1e-4, rtol=1e-4)


@gpu
def test_runner_fp16_engine(models, tmp_path):
    import torch

    from h4w_core.backends.trt_runtime import TensorRTRunner

    path, _ = EngineCache(tmp_path).get_or_build(
        models.fp16, BuildSettings(precision="fp16", max_batch=4, workspace_mib=64))
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float16)
    with TensorRTRunner(str(path)) as runner:
        y = runner.infer({"x": torch.from_numpy(x).cuda()})["y"]
        assert y.dtype == torch.float16
        np.testing.assert_allclose(y.float().cpu().numpy(), x.astype(np.float32) * 0.5, atol=1e-2)


@gpu
def test_runner_input_validation(models, tmp_path):
    import torch

    from h4w_core.backends.trt_compat import InputMismatchError
    from h4w_core.backends.trt_runtime import TensorRTRunner

    path, _ = EngineCache(tmp_path).get_or_build(models.tiny, SMALL)
    runner = TensorRTRunner(str(path))
    ok = torch.zeros(2, 3, 8, 8, device="cuda")
    bad = [
        ({"img": ok}, "missing"),
        ({"image": ok.double()}, "dtype"),
        ({"image": ok.cpu()}, "runner executes on"),
        ({"image": torch.zeros(2, 3, 8, device="cuda")}, "rank"),
        ({"image": torch.zeros(2, 3, 8, 9, device="cuda")}, "axis 3"),
        ({"image": torch.zeros(5, 3, 8, 8, device="cuda")}, "profile 1..4"),
    ]
    for feed, message in bad:
        with pytest.raises(InputMismatchError, match=message):
            runner.infer(feed)
    assert runner.infer({"image": ok})["out"].shape == (2, 5)
    runner.deactivate()


@gpu
def test_runner_rejects_corrupt_engine(tmp_path):
    from h4w_core.backends.trt_compat import EngineLoadError
    from h4w_core.backends.trt_runtime import TensorRTRunner

    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"not an engine" * 10)
    with pytest.raises(EngineLoadError, match="rebuild"):
        TensorRTRunner(str(bad)).activate()
