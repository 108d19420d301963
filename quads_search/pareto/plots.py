"""Pictures of the Pareto fronts: a PNG (matplotlib) and a self-contained interactive HTML page."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from quads_search.metrics import METRICS  # noqa: E402
from quads_search.pareto.front import front  # noqa: E402

PANELS = (("size_mb", "model size (MiB, packed)"), ("gmacs", "GMACs per forward pass"))


def plot_png(trials: pd.DataFrame, path: Path, rank: str = "valid_accuracy") -> None:
    """All trials in grey, each experiment's 2-D front highlighted and labelled by trial."""
    fig, axes = plt.subplots(1, len(PANELS), figsize=(6 * len(PANELS), 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (cost, label) in zip(axes, PANELS):
        ax.scatter(trials[cost], trials[rank], color="0.75", s=18, label="all trials")
        for i, (experiment, group) in enumerate(trials.groupby("experiment")):
            best = front(group, [(rank, "max"), (cost, "min")]).sort_values(cost)
            color = colors[i % len(colors)]
            ax.step(best[cost], best[rank], where="post", color=color, alpha=0.6)
            ax.scatter(best[cost], best[rank], color=color, s=36, label=f"{experiment} front", zorder=3)
            for _, row in best.iterrows():
                ax.annotate(str(row["trial_id"])[-5:], (row[cost], row[rank]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel(METRICS[rank].label)
        ax.set_xscale("log" if trials[cost].max() > 20 * max(trials[cost].min(), 1e-12) else "linear")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("quads-search: accuracy against size and compute")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


HTML = """<!doctype html><html><head><meta charset="utf-8"><title>quads-search Pareto fronts</title>
<style>body{font:14px sans-serif;margin:20px}svg{border:1px solid #ccc;margin:8px}
#tip{position:fixed;background:#fff;border:1px solid #888;padding:6px;display:none;font-size:12px;white-space:pre}</style>
</head><body><h2>quads-search: accuracy against size and compute</h2>
<p>Grey: every finished trial. Coloured: each experiment's non-dominated front. Hover a point for its trial.</p>
<div id="plots"></div><div id="tip"></div>
<script>
const DATA = __DATA__;
const PANELS = [["size_mb","model size (MiB)"],["gmacs","GMACs"]];
const COLORS = ["#1f77b4","#d62728","#2ca02c","#9467bd","#ff7f0e","#17becf"];
const W=520,H=380,M=50, tip=document.getElementById("tip");
for (const [key,label] of PANELS) {
  const xs=DATA.map(d=>d[key]), ys=DATA.map(d=>d.valid_accuracy);
  const x0=Math.min(...xs),x1=Math.max(...xs),y0=Math.min(...ys),y1=Math.max(...ys);
  const sx=v=>M+(W-2*M)*(x1>x0?(v-x0)/(x1-x0):0.5), sy=v=>H-M-(H-2*M)*(y1>y0?(v-y0)/(y1-y0):0.5);
  let s=`<svg width="${W}" height="${H}"><text x="${W/2}" y="${H-10}" text-anchor="middle">${label}</text>`+
        `<text x="12" y="${H/2}" transform="rotate(-90 12 ${H/2})" text-anchor="middle">validation accuracy</text>`+
        `<text x="${M}" y="${H-M+15}">${x0.toPrecision(3)}</text><text x="${W-M}" y="${H-M+15}" text-anchor="end">${x1.toPrecision(3)}</text>`+
        `<text x="${M-5}" y="${H-M}" text-anchor="end">${y0.toFixed(3)}</text><text x="${M-5}" y="${M}" text-anchor="end">${y1.toFixed(3)}</text>`;
  const exps=[...new Set(DATA.map(d=>d.experiment))];
  DATA.forEach((d,i)=>{const onFront=d["front_"+key]; const c=onFront?COLORS[exps.indexOf(d.experiment)%COLORS.length]:"#bbb";
    s+=`<circle cx="${sx(d[key])}" cy="${sy(d.valid_accuracy)}" r="${onFront?6:4}" fill="${c}" data-i="${i}"/>`;});
  document.getElementById("plots").insertAdjacentHTML("beforeend", s+"</svg>");
}
document.querySelectorAll("circle").forEach(c=>{
  c.onmousemove=e=>{const d=DATA[c.dataset.i];tip.style.display="block";tip.style.left=(e.clientX+12)+"px";tip.style.top=(e.clientY+12)+"px";
    tip.textContent=Object.entries(d).filter(([k])=>!k.startsWith("front_")).map(([k,v])=>k+": "+(typeof v==="number"?v.toPrecision(4):v)).join("\\n");};
  c.onmouseleave=()=>{tip.style.display="none";};});
</script></body></html>
"""


def write_html(trials: pd.DataFrame, path: Path, rank: str = "valid_accuracy") -> None:
    """An interactive page (hover for details) with no external scripts."""
    data = trials.copy()
    for cost, _ in PANELS:
        flags = pd.Series(False, index=data.index)
        for _, group in data.groupby("experiment"):
            flags[front(group, [(rank, "max"), (cost, "min")]).index] = True
        data[f"front_{cost}"] = flags
    columns = ["trial_id", "experiment", "valid_accuracy", "accuracy", "f1_macro", "size_mb", "gmacs", "bits_avg",
               "front_size_mb", "front_gmacs"] + [c for c in data.columns if c.startswith("param.")]
    records = json.loads(data[columns].to_json(orient="records"))
    path.write_text(HTML.replace("__DATA__", json.dumps(records)))
