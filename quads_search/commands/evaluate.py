"""`quads-search evaluate MODEL`: accuracy and macro F1 of a packed model (or its ONNX export) on a test split.

An ONNX file (`quads-search export`) runs under ONNX Runtime and is compared, clip by clip,
with the packed PyTorch model it came from: their prediction agreement and the largest
absolute logit difference are reported beside both accuracies.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from quads_search.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser("evaluate", help=summary, description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="packed model file (model.safetensors from train, run or pareto --export), "
                                            "or its ONNX export (*.onnx, run with ONNX Runtime)")
    p.add_argument("--kind", choices=["synthetic", "fsc", "slurp"], help="dataset kind (default: the model's)")
    p.add_argument("--root", help="dataset root (default: the model's)")
    p.add_argument("--split", choices=["test", "valid", "train"], default="test")
    p.add_argument("--reference", type=Path,
                   help="ONNX only: the packed model to compare with (default: the file it was exported from, "
                        "found beside it or where it was)")
    p.add_argument("--threads", type=int, default=0, help="ONNX only: ONNX Runtime's intra-op threads (0: its default)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model.suffix.lower() == ".onnx":
        return _run_onnx(args)
    if args.reference is not None:
        raise UserError("--reference: only for an ONNX model")
    from quads_search.core.epochs import evaluate
    from quads_search.core.export import load_packed
    from quads_search.core.prepare import pick_device

    model, meta = load_packed(args.model)
    config, data = _dataset(args, meta)
    device = pick_device(config.training.device)
    result = evaluate(model.to(device), getattr(data, args.split), config.training.eval_batch_size, device,
                      len(data.intents))
    result.update(split=args.split, clips=len(getattr(data, args.split)), reported=meta["metrics"].get("accuracy"))
    print(json.dumps(result) if args.json else _line(result))
    return 0


def _dataset(args: argparse.Namespace, meta: dict):
    """(the model's run config, the features of its dataset or of --kind/--root), label maps checked."""
    import dataclasses

    from quads_search.cache import cache_root
    from quads_search.config import run_config_from_dict
    from quads_search.data import load_features

    missing = [key for key in ("config", "intents", "metrics") if key not in meta]
    if missing:
        raise UserError(f"{args.model}: its metadata lacks {', '.join(missing)}: not a model that train, run or "
                        "pareto --export wrote, so its dataset is unknown")
    config = run_config_from_dict(meta["config"], f"{args.model} (metadata)")
    dataset = config.dataset
    if args.kind or args.root:
        dataset = dataclasses.replace(dataset, kind=args.kind or dataset.kind, root=args.root or dataset.root)
        for key, problem in dataset.problems():
            raise UserError(f"--{key}: {problem}")
    data = load_features(dataset, cache_root(config.cache_dir), progress=not args.json)
    if data.intents != meta["intents"]:
        raise UserError(f"{args.model}: its {len(meta['intents'])} intents differ from the dataset's "
                        f"{len(data.intents)}; evaluate on a dataset with the same label map")
    return config, data


def _line(result: dict) -> str:
    return (f"{result['split']} accuracy {result['accuracy']:.4f}  f1_macro {result['f1_macro']:.4f}  "
            f"({result['clips']} clips; trial reported {result['reported']})")


def _run_onnx(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from quads_search.core.epochs import accuracy, f1_macro
    from quads_search.deploy.runtime import RUNTIME, open_session, run_logits, session_metadata

    session = open_session(args.model, threads=args.threads)
    meta = session_metadata(session, args.model)
    config, data = _dataset(args, meta)
    split = getattr(data, args.split)
    features = split.features.float().numpy()
    logits = run_logits(session, features, config.training.eval_batch_size)
    predictions, labels = torch.from_numpy(logits.argmax(1)), split.labels.cpu()
    result = {"accuracy": accuracy(predictions, labels), "f1_macro": f1_macro(predictions, labels, len(data.intents)),
              "split": args.split, "clips": len(split), "reported": meta["metrics"].get("accuracy"),
              "runtime": RUNTIME}
    reference = args.reference or _source(args.model, meta)
    if reference is not None:
        theirs = _packed_logits(reference, features, config.training.eval_batch_size)
        result.update(reference=str(reference), reference_accuracy=accuracy(torch.from_numpy(theirs.argmax(1)), labels),
                      agreement=float((theirs.argmax(1) == logits.argmax(1)).mean()) if len(labels) else 1.0,
                      max_abs_logit_diff=float(np.abs(theirs - logits).max()) if len(labels) else 0.0)
    print(json.dumps(result) if args.json else _onnx_lines(result))
    return 0


def _source(model: Path, meta: dict) -> Path | None:
    """The packed file `model` was exported from, beside it or at its recorded path, if unchanged since."""
    source = meta.get("source") or {}
    for candidate in (model.parent / Path(source.get("path", "")).name, Path(source.get("path", ""))):
        if source and candidate.is_file() and file_sha256(candidate) == source.get("sha256"):
            return candidate
    return None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _packed_logits(path: Path, features, batch_size: int):
    """The packed PyTorch model's logits on the same features (CPU, float32)."""
    import numpy as np
    import torch

    from quads_search.core.export import load_packed

    model, _ = load_packed(path)
    with torch.no_grad():
        parts = [model(torch.from_numpy(features[i:i + batch_size]))[0].numpy()
                 for i in range(0, len(features), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, model.num_classes), np.float32)


def _onnx_lines(result: dict) -> str:
    lines = [f"{_line(result)}; {result['runtime']}"]
    if "reference" in result:
        lines.append(f"packed PyTorch model {result['reference']}: accuracy {result['reference_accuracy']:.4f}; "
                     f"predictions agree on {result['agreement']:.2%}; "
                     f"max |logit difference| {result['max_abs_logit_diff']:.3g}")
    else:
        lines.append("no packed model to compare with (its source is not beside it): pass --reference FILE")
    return "\n".join(lines)
