"""`pareto.html`: one self-contained page (no scripts or styles from elsewhere) that a person reads offline.

It shows, for each varying cost objective, every finished trial against validation accuracy
with the front as a step line and the teacher and fp32 student as horizontal references;
then the front as a table with held-out test accuracy, compression ratios, average bits and
the bits of every tensor as a heat-map row. Hover a point for its trial; click it (or a
table row) for its parameters and the path of its model card.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from quads_search.files import write_text
from quads_search.metrics import METRICS
from quads_search.pareto.front import front
from quads_search.pareto.table import REFERENCE_ROLES

if TYPE_CHECKING:
    from quads_search.pareto.analysis import ParetoAnalysis

W, H, LEFT, RIGHT, TOP, BOTTOM = 560, 380, 64, 16, 16, 48
BIT_COLOURS = {1: "#b2182b", 2: "#ef8a62", 3: "#fddbc7", 4: "#f7f7f7", 5: "#d1e5f0", 6: "#d1e5f0", 7: "#67a9cf",
               8: "#67a9cf", 16: "#2166ac", 32: "#053061"}
# A cost axis whose values span more than this ratio is drawn on a log scale: the default sweep's
# fp32 reference is ~16x the smallest model, which a linear axis squeezes the low-bit front against.
LOG_AXIS_SPAN = 8
LOG_AXIS_PAD = 1.3  # a log axis reaches this factor beyond the data on each side


def uses_log_axis(lo: float, hi: float) -> bool:
    """Whether a cost axis over [lo, hi] is drawn logarithmically (the HTML report and pareto.png alike)."""
    return lo > 0 and hi / lo > LOG_AXIS_SPAN


def nice_ticks(lo: float, hi: float, log: bool, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: 1-2-5 steps, or 1-2-5 per decade on a log axis."""
    if log:
        ticks = [m * 10 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in (1, 2, 5)]
        return [t for t in ticks if lo <= t <= hi] or [lo, hi]
    span = (hi - lo) or abs(hi) or 1.0
    raw = span / count
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


class Axis:
    """A data range mapped to pixels, linear or logarithmic, with a little margin."""

    def __init__(self, values: list[float], pixels: tuple[float, float], log: bool):
        lo, hi = min(values), max(values)
        self.log = log and uses_log_axis(lo, hi)
        if self.log:
            lo, hi = lo / LOG_AXIS_PAD, hi * LOG_AXIS_PAD
        else:
            pad = (hi - lo) * 0.06 or abs(hi) * 0.1 or 1.0
            lo, hi = lo - pad, hi + pad
        self.lo, self.hi, self.pixels = lo, hi, pixels

    def __call__(self, v: float) -> float:
        f = (math.log(v / self.lo) / math.log(self.hi / self.lo)) if self.log else (v - self.lo) / (self.hi - self.lo)
        return self.pixels[0] + f * (self.pixels[1] - self.pixels[0])

    def ticks(self) -> list[float]:
        return nice_ticks(self.lo, self.hi, self.log)


def _svg_panel(trials: pd.DataFrame, cost: str, rank: str, refs: dict[str, float]) -> str:
    ys = list(trials[rank]) + list(refs.values())
    x, y = Axis(list(trials[cost]), (LEFT, W - RIGHT), log=True), Axis(ys, (H - BOTTOM, TOP), log=False)
    parts = [f'<svg class="panel" id="panel-{cost}" width="{W}" height="{H}" role="img">',
             f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#444"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#444"/>']
    for t in x.ticks():
        parts.append(f'<line class="xtick" x1="{x(t):.1f}" y1="{H - BOTTOM}" x2="{x(t):.1f}" y2="{H - BOTTOM + 5}" '
                     f'stroke="#444"/><text x="{x(t):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{t:g}</text>')
    for t in y.ticks():
        parts.append(f'<line class="ytick" x1="{LEFT - 5}" y1="{y(t):.1f}" x2="{W - RIGHT}" y2="{y(t):.1f}" '
                     f'stroke="#ddd"/><text x="{LEFT - 8}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{(LEFT + W) / 2}" y="{H - 8}" text-anchor="middle">{html.escape(METRICS[cost].label)}'
                 f'{" (log)" if x.log else ""}</text><text x="14" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(TOP + H - BOTTOM) / 2})">{html.escape(METRICS[rank].label)}</text>')
    for role, value in refs.items():
        parts.append(f'<line class="reference" data-role="{role}" x1="{LEFT}" x2="{W - RIGHT}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}" stroke="#888" stroke-dasharray="5 4"/><text x="{W - RIGHT - 4}" '
                     f'y="{y(value) - 4:.1f}" text-anchor="end" fill="#555">{REFERENCE_ROLES[role]} {value:.3f}</text>')
    best = front(trials, [(rank, "max"), (cost, "min")]).sort_values(cost)
    steps, previous = [], None
    for _, row in best.iterrows():
        if previous is not None:
            steps.append(f"{x(row[cost]):.1f},{y(previous):.1f}")
        steps.append(f"{x(row[cost]):.1f},{y(row[rank]):.1f}")
        previous = row[rank]
    parts.append(f'<polyline class="front" points="{" ".join(steps)}" fill="none" stroke="#d62728" stroke-width="2"/>')
    for _, row in trials.iterrows():
        on = row["trial_id"] in set(best["trial_id"])
        shape = "rect" if row.get("kind") == "reference" else "circle"
        cx, cy = x(row[cost]), y(row[rank])
        attrs = (f'class="trial{" on-front" if on else ""}" data-trial="{html.escape(str(row["trial_id"]))}" '
                 f'fill="{"#d62728" if on else "#999"}"')
        mark = (f'<rect {attrs} x="{cx - 5:.1f}" y="{cy - 5:.1f}" width="10" height="10">' if shape == "rect"
                else f'<circle {attrs} cx="{cx:.1f}" cy="{cy:.1f}" r="{6 if on else 4}">')
        parts.append(f'{mark}<title>{html.escape(_summary(row, rank, cost))}</title></{shape}>')
    parts.append("</svg>")
    return "".join(parts)


def _summary(row: pd.Series, rank: str, cost: str) -> str:
    return (f"{row['trial_id']} ({row.get('kind', 'searched')}): {METRICS[rank].label} {row[rank]:.4f}, "
            f"test {row['accuracy']:.4f} (held out), {cost} {row[cost]:.4g}, {row['bits_avg']:.2f} bits")


def _bits_cell(bits: float) -> str:
    if pd.isna(bits):
        return '<td class="bits"></td>'
    b = int(bits)
    colour = BIT_COLOURS.get(b, "#ccc")
    ink = "#fff" if b in (1, 16, 32) else "#000"
    return f'<td class="bits" data-bits="{b}" style="background:{colour};color:{ink}">{b}</td>'


def _table(rows: pd.DataFrame, bits: pd.DataFrame) -> str:
    numeric = [("valid_accuracy", "valid acc", "{:.4f}"), ("accuracy", "test acc (held out)", "{:.4f}"),
               ("size_mb", "MiB", "{:.4f}"), ("size_x_teacher", "× smaller than teacher", "{:.1f}"),
               ("size_x_student_fp32", "× smaller than fp32 student", "{:.1f}"), ("gmacs", "GMACs", "{:.4g}"),
               ("gmacs_x_teacher", "× fewer GMACs than teacher", "{:.1f}"), ("bits_avg", "avg bits", "{:.2f}")]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in numeric)
    tensors = "".join(f'<th class="tensor"><div>{html.escape(str(c))}</div></th>' for c in bits.columns)
    body = []
    for _, row in rows.iterrows():
        cells = "".join(f"<td>{fmt.format(row[c]) if pd.notna(row.get(c)) else '–'}</td>" for c, _, fmt in numeric)
        tensor_cells = "".join(_bits_cell(bits.loc[row["trial_id"]].get(c)) for c in bits.columns) \
            if row["trial_id"] in bits.index else ""
        body.append(f'<tr class="front-row" data-trial="{html.escape(str(row["trial_id"]))}"><td>'
                    f'{html.escape(str(row["trial_id"]))} <small>{html.escape(str(row.get("kind", "")))}</small></td>'
                    f"{cells}{tensor_cells}</tr>")
    return (f'<table id="front"><thead><tr><th>trial</th>{head}{tensors}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def write_html(analysis: ParetoAnalysis, bits: pd.DataFrame, details: dict[str, dict], path: Path) -> None:
    """The report of `analysis` (its front with ratios and drops); `bits` the front's widths per tensor,
    `details` each trial's parameters and model card path."""
    trials, rows, references, rank = analysis.trials, analysis.best, analysis.references, analysis.rank
    objectives, constant = analysis.objectives, analysis.constant
    refs = reference_values(references, rank)
    panels = "".join(_svg_panel(trials, cost, rank, refs) for cost, mode in objectives if mode == "min")
    notes = "".join(f'<p class="constant">{html.escape(METRICS[m].label)} is the same for every finished trial '
                    f"({trials[m].iloc[0]:.4g}): not plotted.</p>" for m in constant)
    page = PAGE.format(
        title="quads-search: the accuracy / size front", count=len(trials), front=len(rows),
        rank=html.escape(METRICS[rank].label), notes=notes, panels=panels, table=_table(rows, bits),
        refs=_reference_list(references), details=json.dumps(details, default=str).replace("</", "<\\/"))
    write_text(path, page)


def reference_values(references: dict[str, dict], rank: str) -> dict[str, float]:
    """The references on the ranking metric's split, when every experiment agrees (one sweep, usually)."""
    suffix = "_valid_accuracy" if rank == "valid_accuracy" else "_accuracy"
    out = {}
    for role in REFERENCE_ROLES:
        values = {r.get(role + suffix) for r in references.values()}
        if len(values) == 1 and None not in values:
            out[role] = values.pop()
    return out


def _reference_list(references: dict[str, dict]) -> str:
    items = []
    for experiment, refs in references.items():
        for role, label in REFERENCE_ROLES.items():
            if f"{role}_accuracy" in refs:
                items.append(f'<li class="reference-item">{html.escape(experiment)}: {label}: valid '
                             f'{refs[role + "_valid_accuracy"]:.4f}, test {refs[role + "_accuracy"]:.4f} (held out), '
                             f'{refs[role + "_size_mb"]:.3f} MiB, {refs[role + "_gmacs"]:.4g} GMACs</li>')
    return f"<ul>{''.join(items)}</ul>" if items else "<p>No references recorded for these results.</p>"


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:14px sans-serif;margin:20px;color:#222}} svg{{margin:6px;background:#fff}}
svg text{{font-size:11px}} .trial{{cursor:pointer}} table{{border-collapse:collapse;margin-top:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} td:first-child{{text-align:left}}
th.tensor{{height:120px;vertical-align:bottom;padding:2px}} th.tensor div{{writing-mode:vertical-rl;
transform:rotate(180deg);font-weight:normal;font-size:11px}} td.bits{{min-width:18px;text-align:center}}
tr.front-row{{cursor:pointer}} tr.front-row:hover{{background:#f3f3f3}}
#details{{white-space:pre;font:12px monospace;background:#f7f7f7;border:1px solid #ccc;padding:8px;min-height:2em}}
</style></head><body><h2>{title}</h2>
<p>{count} finished trials; {front} on the front. Every choice is made on {rank}; test accuracy is the
held-out estimate, reported only. Dashed lines: the references. Squares: reference trials (uniform bit widths).</p>
{notes}<div id="plots">{panels}</div><h3>References</h3>{refs}<h3>The front</h3>{table}
<h3>Selected trial</h3><div id="details">Click a point or a row.</div>
<script>
const DETAILS = {details};
function show(id) {{ document.getElementById("details").textContent = id + "\\n" + JSON.stringify(DETAILS[id], null, 1); }}
document.querySelectorAll("[data-trial]").forEach(el => el.addEventListener("click", () => show(el.dataset.trial)));
</script></body></html>
"""
