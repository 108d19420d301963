"""ONNX export of packed models, run with ONNX Runtime: bit-exact unpacking, agreement with
`load_packed`, file sizes, the CLI (`export`, `evaluate model.onnx`, `pareto --export --onnx`)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from quads_search import load_packed
from quads_search.config import QuantizationConfig
from quads_search.core.export import save_packed
from quads_search.core.models import model_from_arch
from quads_search.core.quantizer import make_quantizer
from quads_search.quant import size_report
from quads_search.quant.packed import PackedTensor
from tests.runner import run_cli

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from quads_search.deploy.graph import Graph  # noqa: E402  (needs onnx)
from quads_search.deploy.onnx_export import OPSET, export_onnx, graph_budget  # noqa: E402
from quads_search.deploy.runtime import open_session, run_logits  # noqa: E402
from quads_search.deploy.weights import float_weight  # noqa: E402

ROOT = Path(__file__).parents[2]
DEFAULT_SWEEP = ROOT / "docs" / "bench-results" / "default-sweep"
ARCH = dict(d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=256, decoder_layers=1,
            decoder_attention_heads=4, decoder_ffn_dim=256, dropout=0.0, num_mel_bins=80, max_source_positions=150)
# Every width from 1 to 8 bits (3, 5, 6, 7 straddle bytes), fp16 (16) and fp32 (32)
MIXED = {"default": 3, "conv1": 8, "conv2": 5, "head": 6, r"re:layers\.0\.fc\d": 1, r"re:layers\.0\.self_attn\..*": 2,
         r"re:layers\.1\.fc1.*": 7, r"re:layers\.1\.self_attn\.[qk]_proj.*": 4,
         r"re:layers\.1\.self_attn\.v_proj.*": 16, r"re:layers\.1\.self_attn\.out_proj.*": 32}


def _run_graph(g: Graph, value: str, fold: bool) -> np.ndarray:
    """Evaluate a graph without inputs whose one output is the float32 tensor `value`."""
    g.op("Identity", value, out="out")
    graph = onnx.helper.make_graph(g.nodes, "t", [], [onnx.helper.make_tensor_value_info("out", 1, None)],
                                   g.initializers)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], ir_version=8)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"],
                                   disabled_optimizers=[] if fold else ["ConstantFolding"])
    return session.run(None, {})[0]


class _File:
    """Stands in for a numpy safe_open handle."""

    def __init__(self, tensors: dict[str, np.ndarray]):
        self.tensors = tensors

    def get_tensor(self, name: str) -> np.ndarray:
        return self.tensors[name]


@pytest.mark.parametrize("method", ["kmeans", "affine"])
@pytest.mark.parametrize("bits", range(1, 9))
def test_in_graph_dequantization_is_bit_exact_at_every_width(bits, method):
    gen = torch.Generator().manual_seed(bits)
    shape = (7, 13)  # 91 codes: never a whole number of bytes
    codes = torch.randint(0, 2 ** bits, shape, generator=gen)
    params = ({"codebook": torch.randn(2 ** bits, generator=gen)} if method == "kmeans" else
              {"scale": torch.rand(1, generator=gen) / 10, "zero_point": torch.tensor([2.0 ** (bits - 1) - 0.5])})
    item = PackedTensor.from_codes(method, bits, shape, codes, params)
    stored = {"w.idx": item.idx.numpy(), **{f"w.{k}": v.numpy() for k, v in item.params.items()}}
    for fold in (True, False):  # folded at load, and computed by the kernels at run time
        g = Graph()
        value = float_weight(g, _File(stored), "w", {"shape": list(shape), "bits": bits, "method": method})
        assert np.array_equal(_run_graph(g, value, fold), item.dequantize().numpy())


def _mixed_model(tmp_path: Path, method: str, arch: dict = ARCH) -> tuple[Path, float]:
    """A randomly initialised default-shaped student, post-training quantized at MIXED, saved packed."""
    torch.manual_seed(0)
    model = model_from_arch(arch, 31).eval()
    quantizer = make_quantizer(model, QuantizationConfig(method=method, bits=MIXED))
    quantizer.attach()
    assert sorted(set(quantizer.bits.values())) == [1, 2, 3, 4, 5, 6, 7, 8, 16, 32]
    path = tmp_path / f"{method}.safetensors"
    size_mb = size_report(model, quantizer.bits, method)["size_mb"]
    save_packed(model, quantizer, path, {"arch": arch, "num_classes": 31, "intents": [f"i{i}" for i in range(31)],
                                         "config": {}, "metrics": {"size_mb": size_mb}})
    return path, size_mb


@pytest.mark.parametrize("method", ["kmeans", "affine"])
def test_export_of_a_mixed_1_to_8_bit_model_matches_load_packed(tmp_path, method):
    path, size_mb = _mixed_model(tmp_path, method)
    report = export_onnx(path, tmp_path / "model.onnx")
    model, _ = load_packed(path)
    features = torch.randn(5, 80, 300, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(features)[0].numpy()
    for fold in (True, False):
        logits = run_logits(open_session(report["path"], threads=1, fold=fold), features.numpy())
        assert np.abs(logits - expected).max() < 1e-4
        assert np.array_equal(logits.argmax(1), expected.argmax(1))
    packed_bytes = size_mb * 2 ** 20
    file_bytes = (tmp_path / "model.onnx").stat().st_size
    assert report["bytes"] == file_bytes and report["opset"] == OPSET
    assert packed_bytes <= report["initializer_bytes"] <= 1.01 * packed_bytes  # weights at their packed size
    assert file_bytes <= 1.10 * packed_bytes + graph_budget(ARCH["encoder_layers"]) + report["metadata_bytes"]


def test_a_max_pooling_student_exports_with_the_logits_load_packed_gives(tmp_path):
    path, _ = _mixed_model(tmp_path, "kmeans", dict(ARCH, pooling="max"))
    report = export_onnx(path, tmp_path / "model.onnx")
    model, _ = load_packed(path)
    assert model.pooling == "max"
    features = torch.randn(4, 80, 300, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model(features)[0].numpy()
    logits = run_logits(open_session(report["path"], threads=1), features.numpy())
    assert np.abs(logits - expected).max() < 1e-4


def test_fp16_tensors_stay_fp16_in_the_file_and_packed_codes_stay_uint8(tmp_path):
    path, _ = _mixed_model(tmp_path, "kmeans")
    export_onnx(path, tmp_path / "model.onnx")
    stored = {t.name: t for t in onnx.load(str(tmp_path / "model.onnx")).graph.initializer}
    assert stored["encoder.layers.1.self_attn.v_proj.weight"].data_type == onnx.TensorProto.FLOAT16
    assert stored["encoder.layers.0.fc1.weight.idx"].data_type == onnx.TensorProto.UINT8
    assert len(stored["encoder.layers.0.fc1.weight.idx"].raw_data) == 256 * 64 // 8  # 1 bit a weight
    assert len(stored["encoder.conv2.weight.idx"].raw_data) == -(-64 * 64 * 3 * 5 // 8)
    assert "encoder.layers.1.self_attn.out_proj.weight" in stored  # fp32 stays fp32
    assert not [name for name in stored if "embed_positions" in name]  # computed in-graph


def test_export_cli_refuses_what_is_not_a_packed_model_and_unwritable_paths(tmp_path):
    path, _ = _mixed_model(tmp_path, "kmeans")
    (tmp_path / "notes.txt").write_text("not a model")
    for args in ([tmp_path / "notes.txt", tmp_path / "a.onnx"], [tmp_path / "missing.safetensors", tmp_path / "b.onnx"],
                 [path, tmp_path / "notes.txt" / "c.onnx"], [path, tmp_path], [path, "x.onnx", "--format", "tflite"]):
        out = run_cli("export", *args)
        assert out.returncode == 2, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) <= 2 and "Traceback" not in out.stderr, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kmeans.safetensors", "notes.txt"]  # no temp file left
    out = run_cli("export", path, tmp_path / "sub" / "model.onnx", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["bytes"] == (tmp_path / "sub" / "model.onnx").stat().st_size
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["model.onnx"]


def test_pareto_exports_the_front_as_onnx_that_agrees_with_the_packed_models(tmp_path):
    results = tmp_path / "default-sweep"
    shutil.copytree(DEFAULT_SWEEP, results)
    front = json.loads(run_cli("pareto", results, "--json", "--no-plots").stdout)
    out = run_cli("pareto", results, "--export", tmp_path / "chosen", "--onnx", "--no-plots")
    assert out.returncode == 0, out.stderr[-2000:]
    exported = sorted((tmp_path / "chosen").glob("*/model.onnx"))
    assert [p.parent.name for p in exported] == sorted(row["trial_id"] for row in front) and len(front) >= 5
    assert len(list((tmp_path / "chosen").iterdir())) == len(front)
    features = torch.randn(16, 80, 300, generator=torch.Generator().manual_seed(4))
    for path in exported:
        model, meta = load_packed(path.with_name("model.safetensors"))
        with torch.no_grad():
            expected = model(features)[0].numpy()
        logits = run_logits(open_session(path, threads=1), features.numpy())
        assert np.array_equal(logits.argmax(1), expected.argmax(1)) and np.abs(logits - expected).max() < 1e-4
        size_bytes = meta["metrics"]["size_mb"] * 2 ** 20
        assert path.stat().st_size <= 1.10 * size_bytes + graph_budget(2) + 8192  # + its metadata JSON
    assert run_cli("pareto", results, "--onnx", "--no-plots").returncode == 2  # --onnx needs --export


@pytest.mark.slow
def test_a_trained_mixed_bit_smoke_model_evaluates_the_same_under_onnx_runtime(smoke_config, prepared, tmp_path):
    from quads_search.core.run import run_quads
    from quads_search.sweep.params import apply_params

    config = apply_params(smoke_config.run_config(), {f"bits.{k}": v for k, v in MIXED.items()})
    metrics = run_quads(config, tmp_path / "run", prepared=prepared)
    assert sorted(set(metrics["bits"].values())) == [1, 2, 3, 4, 5, 6, 7, 8, 16, 32]
    onnx_path = tmp_path / "export" / "model.onnx"
    out = run_cli("export", metrics["model_path"], "--format", "onnx", onnx_path, "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    size_bytes = metrics["size_mb"] * 2 ** 20
    report = json.loads(out.stdout)
    assert size_bytes <= onnx_path.stat().st_size <= 1.10 * size_bytes + graph_budget(2) + report["metadata_bytes"]
    out = run_cli("evaluate", onnx_path, "--json")  # compares with the packed file it came from, found by path
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["accuracy"] == result["reference_accuracy"] == metrics["accuracy"]
    assert result["agreement"] >= 0.995 and result["max_abs_logit_diff"] < 1e-3
    assert result["clips"] == len(prepared.data.test) and result["reference"] == metrics["model_path"]


def test_the_onnx_extra_pins_the_installed_versions_and_dev_pulls_it_in():
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pinned = {r.name: str(r.specifier) for r in map(Requirement, extras["onnx"])}
    assert pinned == {name: f"=={version(name)}" for name in ("onnx", "onnxruntime")}
    assert "quads-search[onnx]" in extras["dev"]
