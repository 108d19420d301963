"""What a device gets: bytes on disk, resident memory and latency of the chosen models, side by side.

Run from the repository root:
    python -m bench.export [RESULTS] [--threads 1 2] [--warmup 20] [--runs 200] [--save DIR]
(default RESULTS: docs/bench-results/default-sweep/mixed_precision; 13 min on 2 shared cores;
its tables and findings are in docs/benchmarks.md).

Models: the front of RESULTS (valid_accuracy max, size_mb min) plus its fp32 trial. Engines:
  torch:       the fp32 trial in PyTorch; `load_packed` of a front model (dequantized to float);
  ort:         ONNX Runtime on `quads-search export` (weights packed; ORT folds them at load);
  ort-nofold:  the same with ONNX Runtime's constant folding off (codes stay packed in memory);
  ort-int8:    ONNX Runtime's own dynamic int8 quantization of the fp32 trial's export
               (after `quant_pre_process`, which folds the weight transposes so MatMuls qualify).
Each (engine, model, threads) is measured in a fresh subprocess that imports only what that
engine needs (ORT processes never import torch): RSS after the imports, peak RSS after
loading, peak RSS after the timed runs, and p50/p90 latency at batch 1 on one 3-s input
(80 x 300 log-mel) over `--runs` runs after `--warmup`. Beside the front it measures a
whisper-tiny-shaped pair (random weights, 2-bit and fp32; `--no-tiny` skips it), whose weights,
unlike the default student's, are large enough to show in RSS. It also checks each ONNX file's
logits against its PyTorch model on 64 random inputs. Prints markdown tables and one JSON
object; `--save DIR` writes export-bench.json there.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
DEFAULT_RESULTS = ROOT / "docs" / "bench-results" / "default-sweep" / "mixed_precision"
OBJECTIVES = [("valid_accuracy", "max"), ("size_mb", "min")]
FRAMES, MELS = 300, 80


# ----------------------------------------------------------------------------- one measurement (subprocess)


def _status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS: resident now; VmHWM: its peak so far)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _runner(engine: str, path: str, threads: int):
    """Import the engine, load the model; returns (a function running one batch, RSS after the imports)."""
    import numpy as np

    features = np.random.default_rng(0).standard_normal((1, MELS, FRAMES)).astype(np.float32)
    if engine == "torch":
        import torch

        from quads_search.core.export import load_packed

        torch.set_num_threads(threads)
        imported = _status_kib("VmRSS")
        model, _ = load_packed(path)
        x = torch.from_numpy(features)

        def run() -> None:
            with torch.inference_mode():
                model(x)
        return run, imported
    from quads_search.deploy.runtime import open_session

    imported = _status_kib("VmRSS")
    session = open_session(path, threads=threads, fold=engine != "ort-nofold")
    name = session.get_inputs()[0].name
    return (lambda: session.run(None, {name: features})), imported


def measure(engine: str, path: str, threads: int, warmup: int, runs: int) -> dict:
    start = time.perf_counter()
    run, imported = _runner(engine, path, threads)
    load_s, resident, loaded = time.perf_counter() - start, _status_kib("VmRSS"), _status_kib("VmHWM")
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {"rss_imported_mib": imported / 1024, "rss_loaded_mib": resident / 1024, "load_s": load_s,
            "peak_rss_loaded_mib": loaded / 1024,
            "peak_rss_inference_mib": _status_kib("VmHWM") / 1024, "p50_ms": times[len(times) // 2],
            "p90_ms": times[int(len(times) * 0.9)], "runs": runs, "warmup": warmup}


# ----------------------------------------------------------------------------- the side-by-side run


def pick_models(results: Path) -> tuple[list[dict], dict]:
    """(the front's trials, the fp32 trial) as plain dicts, smallest first."""
    from quads_search.pareto.front import finished, front
    from quads_search.results import load_trials

    trials = finished(load_trials(results), OBJECTIVES, results)
    chosen = front(trials, OBJECTIVES).sort_values("size_mb")
    fp32 = trials[trials["bits_avg"] >= 32].sort_values("valid_accuracy", ascending=False)
    if fp32.empty:
        raise SystemExit(f"{results}: no fp32 trial to compare with")
    columns = ["trial_id", "kind", "bits_avg", "size_mb", "size_mb_nominal", "valid_accuracy", "accuracy",
               "model_path"]
    return chosen[columns].to_dict("records"), fp32[columns].iloc[0].to_dict()


def tiny_models(work: Path, bits: int = 2) -> tuple[list[dict], dict]:
    """A whisper-tiny-shaped student (7.6 M params, random weights, 3-s input) at `bits` (k-means,
    post-training) and in fp32, saved packed: memory and latency do not depend on training, and at
    this size the weights, not the runtime, decide the resident memory."""
    import copy

    from quads_search.config import QuantizationConfig
    from quads_search.core.export import save_packed
    from quads_search.core.models import PRESETS, model_from_arch
    from quads_search.core.quantizer import make_quantizer
    from quads_search.quant import size_report

    d_model, layers, heads, ffn = PRESETS["whisper-tiny"]
    arch = dict(d_model=d_model, encoder_layers=layers, encoder_attention_heads=heads, encoder_ffn_dim=ffn,
                decoder_layers=1, decoder_attention_heads=heads, decoder_ffn_dim=ffn, dropout=0.0,
                num_mel_bins=MELS, max_source_positions=FRAMES // 2)
    fp32 = model_from_arch(arch, 31).eval()
    quantized = copy.deepcopy(fp32)
    quantizer = make_quantizer(quantized, QuantizationConfig(method="kmeans", bits={"default": bits}))
    quantizer.attach()
    rows = []
    for name, model, q in ((f"tiny-{bits}bit", quantized, quantizer), ("tiny-fp32", fp32, None)):
        report = size_report(model, q.bits if q else {}, "kmeans")
        path = work / f"{name}.safetensors"
        save_packed(model, q, path, {"arch": arch, "num_classes": 31, "intents": [f"intent{i}" for i in range(31)],
                                     "config": {}, "metrics": report})
        rows.append({"trial_id": name, "kind": "synthetic", "bits_avg": report["bits_avg"],
                     "size_mb": report["size_mb"], "size_mb_nominal": report["size_mb_nominal"],
                     "valid_accuracy": None, "accuracy": None, "model_path": str(path)})
    return rows[:1], rows[1]


def export_files(models: list[dict], fp32: dict, work: Path) -> dict[str, dict]:
    """ONNX files of every model, and ORT's int8 of the fp32 one: trial_id -> {kind: path or error}."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from quads_search.deploy.onnx_export import export_onnx

    files: dict[str, dict] = {}
    for row in [*models, fp32]:
        out = work / f"{row['trial_id']}.onnx"
        export_onnx(row["model_path"], out)
        files[row["trial_id"]] = {"onnx": str(out)}
    int8, pre = work / f"{fp32['trial_id']}.int8.onnx", work / f"{fp32['trial_id']}.pre.onnx"
    try:
        quant_pre_process(files[fp32["trial_id"]]["onnx"], str(pre))
        quantize_dynamic(str(pre), str(int8), weight_type=QuantType.QInt8)
        files[fp32["trial_id"]]["int8"] = str(int8)
    except Exception as exc:  # noqa: BLE001 - "where it loads": record why it did not
        files[fp32["trial_id"]]["int8_error"] = f"{type(exc).__name__}: {exc}"
    return files


def configurations(models: list[dict], fp32: dict, files: dict[str, dict]) -> list[dict]:
    """Every (label, engine, model file) to measure."""
    out = [{"label": "PyTorch fp32", "engine": "torch", "trial": fp32, "path": fp32["model_path"]},
           {"label": "ORT fp32 export", "engine": "ort", "trial": fp32, "path": files[fp32["trial_id"]]["onnx"]}]
    if "int8" in files[fp32["trial_id"]]:
        out.append({"label": "ORT int8 (dynamic, of fp32)", "engine": "ort", "trial": fp32,
                    "path": files[fp32["trial_id"]]["int8"]})
    for row in models:
        path = files[row["trial_id"]]["onnx"]
        out += [{"label": "PyTorch load_packed", "engine": "torch", "trial": row, "path": row["model_path"]},
                {"label": "ORT packed export", "engine": "ort", "trial": row, "path": path},
                {"label": "ORT packed, no folding", "engine": "ort-nofold", "trial": row, "path": path}]
    return out


def run_worker(config: dict, threads: int, warmup: int, runs: int) -> dict:
    command = [sys.executable, "-m", "bench.export", "--worker", config["engine"], str(config["path"]),
               "--threads", str(threads), "--warmup", str(warmup), "--runs", str(runs)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def agreement(models: list[dict], fp32: dict, files: dict[str, dict]) -> dict[str, dict]:
    """Max |logit difference| and argmax agreement of each ONNX file against its PyTorch model,
    on 64 seeded random inputs (a numerical check, not an accuracy)."""
    import numpy as np
    import torch

    from quads_search.core.export import load_packed
    from quads_search.deploy.runtime import open_session, run_logits

    features = np.random.default_rng(1).standard_normal((64, MELS, FRAMES)).astype(np.float32)
    out = {}
    for row in [*models, fp32]:
        model, _ = load_packed(row["model_path"])
        with torch.inference_mode():
            expected = model(torch.from_numpy(features))[0].numpy()
        for kind, path in files[row["trial_id"]].items():
            if kind in ("onnx", "int8"):
                logits = run_logits(open_session(path, threads=1), features)
                out[f"{row['trial_id']}/{kind}"] = {"max_abs_logit_diff": float(np.abs(logits - expected).max()),
                                                    "agreement": float((logits.argmax(1) == expected.argmax(1)).mean())}
    return out


# ----------------------------------------------------------------------------- report


def cpu_model() -> str:
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")]
    return f"{names[0] if names else platform.processor()} x {len(names) or os.cpu_count()}"


def size_table(models: list[dict], fp32: dict, files: dict[str, dict]) -> str:
    lines = ["| trial | bits | size_mb (KiB) | nominal (KiB) | packed .safetensors (KiB) | ONNX (KiB) | "
             "ONNX / size_mb |",
             "|---|---|---|---|---|---|---|"]
    for row in [*models, fp32]:
        onnx_bytes = Path(files[row["trial_id"]]["onnx"]).stat().st_size
        lines.append(f"| {row['trial_id']} | {row['bits_avg']:.2f} | {row['size_mb'] * 1024:.1f} | "
                     f"{row['size_mb_nominal'] * 1024:.1f} | {Path(row['model_path']).stat().st_size / 1024:.1f} | "
                     f"{onnx_bytes / 1024:.1f} | {onnx_bytes / (row['size_mb'] * 2 ** 20):.2f} |")
    if "int8" in files[fp32["trial_id"]]:
        lines.append(f"| {fp32['trial_id']} ORT int8 | 8 (weights) | | | | "
                     f"{Path(files[fp32['trial_id']]['int8']).stat().st_size / 1024:.1f} | |")
    return "\n".join(lines)


def speed_table(rows: list[dict]) -> str:
    lines = ["| configuration | trial | bits | threads | RSS after imports (MiB) | RSS after load (MiB) | "
             "peak RSS by end of load (MiB) | peak RSS by end of inference (MiB) | p50 (ms) | p90 (ms) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["result"]
        head = f"| {r['label']} | {r['trial_id']} | {r['bits_avg']:.2f} | {r['threads']} |"
        if "error" in m:
            lines.append(f"{head} failed: {m['error']} | | | | | |")
        else:
            lines.append(f"{head} {m['rss_imported_mib']:.1f} | {m['rss_loaded_mib']:.1f} | "
                         f"{m['peak_rss_loaded_mib']:.1f} | "
                         f"{m['peak_rss_inference_mib']:.1f} | {m['p50_ms']:.3f} | {m['p90_ms']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--no-tiny", action="store_true", help="skip the whisper-tiny-shaped synthetic pair")
    p.add_argument("--save", type=Path, help="write export-bench.json into this directory")
    p.add_argument("--worker", nargs=2, metavar=("ENGINE", "MODEL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:  # one measurement, in its own process
        print(json.dumps(measure(*args.worker, args.threads[0], args.warmup, args.runs)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-export-") as work:
        groups = [pick_models(args.results)] + ([] if args.no_tiny else [tiny_models(Path(work))])
        files = {k: v for models, fp32 in groups for k, v in export_files(models, fp32, Path(work)).items()}
        sizes = [size_table(models, fp32, files) for models, fp32 in groups]
        checks = {k: v for models, fp32 in groups for k, v in agreement(models, fp32, files).items()}
        rows = [{"label": c["label"], "engine": c["engine"], "trial_id": c["trial"]["trial_id"],
                 "bits_avg": c["trial"]["bits_avg"], "threads": t,
                 "result": run_worker(c, t, args.warmup, args.runs)}
                for models, fp32 in groups for c in configurations(models, fp32, files) for t in args.threads]
    report = {"command": "python -m bench.export " + " ".join(sys.argv[1:]), "cpu": cpu_model(),
              "results": str(args.results), "groups": groups, "agreement": checks, "rows": rows,
              "int8_errors": {k: v["int8_error"] for k, v in files.items() if "int8_error" in v}}
    print(f"CPU: {report['cpu']}\n\n" + "\n\n".join(sizes) + f"\n\n{speed_table(rows)}\n")
    print(json.dumps(report, default=str))
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        (args.save / "export-bench.json").write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
