"""`quads-search evaluate MODEL`: accuracy and macro F1 of a packed model on a test split."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from quads_search.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser("evaluate", help=summary, description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="packed model file (model.safetensors from train, run or pareto --export)")
    p.add_argument("--kind", choices=["synthetic", "fsc", "slurp"], help="dataset kind (default: the model's)")
    p.add_argument("--root", help="dataset root (default: the model's)")
    p.add_argument("--split", choices=["test", "valid", "train"], default="test")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from quads_search.cache import cache_root
    from quads_search.config import run_config_from_dict
    from quads_search.core.epochs import evaluate
    from quads_search.core.export import load_packed
    from quads_search.core.run import pick_device
    from quads_search.data import load_features

    model, meta = load_packed(args.model)
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
    device = pick_device(config.training.device)
    result = evaluate(model.to(device), getattr(data, args.split), config.training.eval_batch_size, device,
                      len(data.intents))
    result.update(split=args.split, clips=len(getattr(data, args.split)), reported=meta["metrics"].get("accuracy"))
    print(json.dumps(result) if args.json else
          f"{args.split} accuracy {result['accuracy']:.4f}  f1_macro {result['f1_macro']:.4f}  "
          f"({result['clips']} clips; trial reported {result['reported']})")
    return 0
