"""`pareto.png`: the report's content as one picture for the README (matplotlib, no display).

One panel per varying cost objective (every trial against validation accuracy, the front as
a step line, the teacher and fp32 student as dashed references), and the bits of every
tensor of each front model as a heat map.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from quads_search.metrics import METRICS  # noqa: E402
from quads_search.pareto.front import front  # noqa: E402
from quads_search.pareto.report import (  # noqa: E402
    BIT_COLOURS,
    LOG_AXIS_PAD,
    reference_values,
    nice_ticks,
    uses_log_axis,
)
from quads_search.files import atomic_path  # noqa: E402
from quads_search.pareto.table import REFERENCE_ROLES  # noqa: E402


def plot_png(trials: pd.DataFrame, bits: pd.DataFrame, references: dict[str, dict],
             objectives: list[tuple[str, str]], rank: str, path: Path) -> None:
    costs = [m for m, mode in objectives if mode == "min"]
    fig, axes = plt.subplots(1, len(costs) + 1, figsize=(6 * len(costs) + 7, 5),
                             gridspec_kw={"width_ratios": [1] * len(costs) + [1.2]})
    for ax, cost in zip(axes, costs):
        _panel(ax, trials, cost, rank, reference_values(references, rank))
    _heatmap(axes[-1], bits)
    fig.suptitle(f"quads-search: {len(trials)} finished trials, chosen on {METRICS[rank].label}")
    fig.tight_layout()
    with atomic_path(path) as temp:
        fig.savefig(temp, dpi=110, format="png")
    plt.close(fig)


def _panel(ax, trials: pd.DataFrame, cost: str, rank: str, refs: dict[str, float]) -> None:
    anchors = trials["kind"] == "reference"
    searched, anchors = trials[~anchors], trials[anchors]
    ax.scatter(searched[cost], searched[rank], color="0.6", s=20, label="trials")
    ax.scatter(anchors[cost], anchors[rank], color="0.3", marker="s", s=30, label="reference trials (uniform bits)")
    best = front(trials, [(rank, "max"), (cost, "min")]).sort_values(cost)
    ax.step(best[cost], best[rank], where="post", color="#d62728")
    on_ref = best["kind"] == "reference"
    ax.scatter(best[cost][~on_ref], best[rank][~on_ref], color="#d62728", s=40, zorder=3, label="front")
    ax.scatter(best[cost][on_ref], best[rank][on_ref], color="#d62728", marker="s", s=40, zorder=3)
    for _, row in best.iterrows():
        ax.annotate(f"{row['bits_avg']:.1f} b", (row[cost], row[rank]), fontsize=7, xytext=(3, -9),
                    textcoords="offset points")
    for role, value in refs.items():
        ax.axhline(value, color="0.45", linestyle="--", linewidth=1)
        ax.annotate(f"{REFERENCE_ROLES[role]} {value:.3f}", (1, value), xycoords=("axes fraction", "data"),
                    ha="right", va="bottom", fontsize=8, color="0.3")
    lo, hi = trials[cost].min(), trials[cost].max()
    if uses_log_axis(lo, hi):  # 1-2-5 ticks in plain numbers, as the HTML report draws them
        ax.set_xscale("log")
        ticks = nice_ticks(lo / LOG_AXIS_PAD, hi * LOG_AXIS_PAD, log=True)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(METRICS[cost].label)
    ax.set_ylabel(METRICS[rank].label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")


def _heatmap(ax, bits: pd.DataFrame) -> None:
    widths = sorted(BIT_COLOURS)
    cmap = ListedColormap([BIT_COLOURS[b] for b in widths])
    norm = BoundaryNorm([w - 0.5 for w in widths] + [widths[-1] + 0.5], cmap.N)
    values = bits.to_numpy(dtype=float)
    ax.imshow(np.where(np.isnan(values), np.nan, values), cmap=cmap, norm=norm, aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=6,
                    color="white" if int(v) in (1, 16, 32) else "black")
    ax.set_yticks(range(len(bits.index)), [str(t)[-8:] for t in bits.index], fontsize=7)
    ax.set_xticks(range(len(bits.columns)), list(bits.columns), rotation=90, fontsize=6)
    ax.set_title("bits per tensor of the front models", fontsize=10)
