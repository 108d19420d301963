"""A trained student as one packed file, and back to a plain PyTorch module with one call."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from quads_search.errors import UserError
from quads_search.models import SLUModel, model_from_arch
from quads_search.quant import Quantizer, read_packed, save_packed

FORMAT = "quads-search/packed-model/1"


def save_model(model: SLUModel, quantizer: Quantizer | None, path: Path, *, config: dict, intents: list[str],
               metrics: dict, dataset_key: str) -> None:
    """Write the packed model with what is needed to rebuild, evaluate and describe it."""
    metadata = {"format": FORMAT, "arch": model.arch, "num_classes": model.num_classes, "intents": intents,
                "config": config, "metrics": metrics, "dataset_key": dataset_key,
                "bits": dict(quantizer.bits) if quantizer is not None else {}}
    save_packed(model, quantizer, path, metadata)


def load_packed(path: str | Path) -> tuple[nn.Module, dict]:
    """(model in eval mode with the exact trained weights, metadata) from a packed file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    try:
        state, metadata = read_packed(path)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: not a readable packed model ({exc})") from None
    if metadata.get("format") != FORMAT:
        raise UserError(f"{path}: format {metadata.get('format')!r} is not {FORMAT!r}")
    model = model_from_arch(metadata["arch"], metadata["num_classes"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"encoder.embed_positions.weight"}:
        raise UserError(f"{path}: tensors do not fit the architecture (missing {missing}, unexpected {unexpected})")
    return model.eval(), metadata
