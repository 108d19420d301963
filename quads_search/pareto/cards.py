"""Model cards: what a chosen model is, how it was chosen and what it costs, beside its file.

`write_card` puts `MODEL_CARD.md` and `model_card.json` in a directory; `pareto` writes one
beside every front model's file (the report links them) and `--export` copies model and card.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from quads_search.core.packed_header import read_packed_metadata
from quads_search.errors import UserError
from quads_search.files import write_text
from quads_search.pareto.table import DROP_COLUMNS, PAPER_BOUND, REFERENCE_ROLES


def card_data(row: pd.Series, references: dict) -> dict:
    source = Path(str(row["model_path"]))
    if not source.is_file():
        raise UserError(f"{source}: the model file of trial {row['trial_id']} is missing")
    meta = read_packed_metadata(source)
    ratios = {k: float(row[k]) for k in row.index if "_x_" in k and pd.notna(row[k])}
    drops = {k: float(row[k]) for k in DROP_COLUMNS if k in row.index and pd.notna(row[k])}
    return {"trial_id": row["trial_id"], "experiment": row["experiment"], "kind": row.get("kind"),
            "metrics": meta["metrics"], "compression": ratios, "drops": drops, "references": references,
            "bits": meta.get("bits", {}), "config": meta["config"], "intents": meta["intents"]}


def write_card(card: dict, directory: Path) -> Path:
    """Write the card (markdown + JSON) into `directory`; returns the markdown's path."""
    directory.mkdir(parents=True, exist_ok=True)
    write_text(directory / "model_card.json", json.dumps(card, indent=2, default=str))
    path = directory / "MODEL_CARD.md"
    write_text(path, _markdown(card))
    return path


def _markdown(card: dict) -> str:
    m, refs = card["metrics"], card["references"]
    bits = "\n".join(f"| {name} | {b} |" for name, b in sorted(card["bits"].items()))
    against = "".join(
        f"- {label}: valid {refs[role + '_valid_accuracy']:.4f}, test {refs[role + '_accuracy']:.4f}; this model is "
        f"{card['compression'].get('size_x_' + role, float('nan')):.1f}x smaller and needs "
        f"{card['compression'].get('gmacs_x_' + role, float('nan')):.1f}x fewer GMACs\n"
        for role, label in REFERENCE_ROLES.items() if role + "_accuracy" in refs)
    return (f"# quads-search model {card['trial_id']} ({card['experiment']})\n\n"
            f"Chosen on validation accuracy {m['valid_accuracy']:.4f}. Held-out test accuracy {m['accuracy']:.4f}, "
            f"macro F1 {m['f1_macro']:.4f} (the test split never took part in choosing). "
            f"{m['params_m']:.3f} M params, {m['gmacs']:.4f} GMACs, {m['size_mb']:.4f} MiB packed "
            f"({m['size_mb_nominal']:.4f} MiB nominal), {m['bits_avg']:.2f} bits on average.\n\n"
            + (f"## Against the references\n\n{against}{_drops(card.get('drops', {}))}\n" if against else "")
            + "Load it: `from quads_search import load_packed; model, meta = load_packed('model.safetensors')`\n\n"
            f"## Bits per weight tensor\n\n| tensor | bits |\n|---|---|\n{bits}\n\n"
            f"## Configuration\n\n```json\n{json.dumps(card['config'], indent=2, default=str)}\n```\n")


def _drops(drops: dict) -> str:
    """The relative drops against the teacher and the fp32 trial, and whether the paper's bound holds."""
    out = ""
    for ref, label in (("teacher", "the teacher"), ("fp32_trial", "the fp32 trial (same schedule, unquantized)")):
        if f"{ref}_gap_valid" in drops and f"{ref}_gap_test" in drops:
            out += (f"- {drops[f'{ref}_gap_valid']:.2%} below {label} on validation, "
                    f"{drops[f'{ref}_gap_test']:.2%} on test (relative)\n")
    if "teacher_gap_valid" in drops and "teacher_gap_test" in drops:
        inside = [split for split in ("valid", "test") if drops[f"teacher_gap_{split}"] <= PAPER_BOUND]
        verdict = (f"inside on {' and '.join(inside)}" if inside else "outside on both splits")
        out += f"- the paper's bound, at most {PAPER_BOUND:.2%} below the teacher: {verdict}\n"
    return out
