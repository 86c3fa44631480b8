"""Write the analysis notebooks of this folder (without outputs).

The notebooks are the source of truth for readers; this script is how they
are maintained: edit the cells here and run `python3 notebooks/build_notebooks.py`.
`run-all.sh` then executes them in place.
"""

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
from pathlib import Path
import math
import re

import numpy as np
import pandas as pd
import matplotlib
import matplotlib.pyplot as plt

# nbclient/nbconvert run with cwd = notebooks/; the repository root is its parent.
HERE = Path.cwd().resolve()
ROOT = HERE if (HERE / "experiments").is_dir() else HERE.parent
FIG = ROOT / "notebooks" / "figures"
FIG.mkdir(parents=True, exist_ok=True)
plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 120, "axes.grid": True, "grid.alpha": 0.3})


def read(name, kind):
    path = ROOT / "results" / name / f"{kind}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `spotsim run experiments/{name}.toml` first")
    return pd.read_csv(path)


def log_x_ticks(ax, ticks, labels):
    """Log x axis with only the given labelled ticks (no overlapping minor labels)."""
    ax.set_xscale("log")
    ax.set_xticks(ticks, labels)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def metric(summary, name):
    """Rows of one metric, one per point, indexed by point."""
    return summary[summary["metric"] == name].set_index("point")
'''


def nb(cells):
    n = new_notebook()
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.metadata["language_info"] = {"name": "python"}
    n.cells = [new_markdown_cell(c[3:]) if c.startswith("md:") else new_code_cell(c) for c in cells]
    return n


# --------------------------------------------------------------------------
CHECKPOINT = [
    '''md:# Which checkpoint interval for a 100-hour spot training job?

**Question** (`experiments/checkpoint-sweep.toml`): which checkpoint interval
minimises the cost and the finish time of a 100-hour spot training job on
ml.p3.2xlarge, and how does the answer move as spot interruptions get more or
less frequent (MTBF 3 h, 10 h, 30 h)?

**Input**: this notebook runs the sweep itself, in process, with the
`spotsim` Python package (`pip install ./python`): 24 points x 2000
replications take about a second. `res.summary` and `res.replications` are
the DataFrames `pd.read_csv` would give of `summary.csv` and
`replications.csv`, value for value. For large runs, or to run on a Slurm
cluster, use the command line (`spotsim run experiments/checkpoint-sweep.toml`,
or `spotsim slurm ...`) and read `results/checkpoint-sweep/*.csv` with
`read("checkpoint-sweep", "summary")`: the same columns. The intervals `"young"` and `"daly"` are resolved per MTBF; the metric
`checkpoint_interval_h` gives every interval in hours. Each checkpoint write
takes 5 min, a restore 10 min, startup 5 min.''',
    SETUP,
    '''import os
import spotsim

# run-all.sh --quick sets SPOTSIM_QUICK=1: fewer replications.
REPS = 200 if os.environ.get("SPOTSIM_QUICK") == "1" else None  # None: the file's 2000
res = spotsim.run(ROOT / "experiments/checkpoint-sweep.toml", replications=REPS)
summary, reps = res.summary, res.replications
IV, MT = "training.checkpoint.interval", "spot.interruptions.mtbf"

points = metric(summary, "checkpoint_interval_h")[[IV, MT]].copy()
points["tau_h"] = metric(summary, "checkpoint_interval_h")["mean"]
points["mtbf_h"] = points[MT].map(lambda s: pd.Timedelta(s).total_seconds() / 3600)
for m, col in [("wall_time_h", "wall"), ("cost_usd", "cost"), ("on_demand_cost_usd", "od_cost")]:
    rows = metric(summary, m)
    points[col] = rows["mean"]
    points[col + "_lo"] = rows["ci95_low"]
    points[col + "_hi"] = rows["ci95_high"]
    points[col + "_p95"] = rows["p95"]
points = points.sort_values(["mtbf_h", "tau_h"])
mtbfs = list(dict.fromkeys(points.sort_values("mtbf_h")[MT]))
colors = dict(zip(mtbfs, plt.cm.viridis(np.linspace(0.1, 0.8, len(mtbfs)))))
points[[IV, MT, "tau_h", "wall", "wall_p95", "cost"]].round(3)''',
    '''fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharex=True)
panels = [("wall", "Mean wall time (h)", True), ("wall_p95", "p95 wall time (h)", False),
          ("cost", "Mean cost (USD)", True)]
for ax, (col, label, band) in zip(axes, panels):
    for mt in mtbfs:
        d = points[points[MT] == mt]
        ax.plot(d["tau_h"], d[col], "-o", ms=3, color=colors[mt], label=f"MTBF {mt}")
        if band:
            ax.fill_between(d["tau_h"], d[col + "_lo"], d[col + "_hi"], color=colors[mt], alpha=0.25, lw=0)
        for name, marker in [("young", "*"), ("daly", "D")]:
            r = d[d[IV] == name]
            ax.plot(r["tau_h"], r[col], marker, color=colors[mt], mec="black", ms=11 if marker == "*" else 7)
    log_x_ticks(ax, [1/6, 1/3, 0.5, 1, 2, 4], ["10m", "20m", "30m", "1h", "2h", "4h"])
    ax.set_xlabel("Checkpoint interval τ (h, log scale)")
    ax.set_ylabel(label)
    ax.set_title(label.split(" (")[0] + (" (band: 95% CI)" if band else ""))
handles, labels = axes[0].get_legend_handles_labels()
handles += [plt.Line2D([], [], ls="", marker="*", ms=11, mfc="white", mec="black"),
            plt.Line2D([], [], ls="", marker="D", ms=7, mfc="white", mec="black")]
labels += ["Young's interval", "Daly's interval"]
fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
fig.suptitle("100 h spot job on ml.p3.2xlarge: wall time and cost against checkpoint interval")
fig.tight_layout(rect=(0, 0.07, 1, 1))
fig.savefig(FIG / "checkpoint-interval-sweep.png")
plt.show()''',
    '''# Best swept interval per MTBF (by mean wall time and by mean cost).
best = {}
for mt in mtbfs:
    d = points[points[MT] == mt]
    best[mt] = {"wall": d.loc[d["wall"].idxmin()], "cost": d.loc[d["cost"].idxmin()]}


def on_demand_wall_h(tau_h, work_h=100.0, startup_h=5 / 60, write_h=5 / 60):
    """Deterministic on-demand wall time: startup + work + ceil(work/τ) writes."""
    return startup_h + work_h + math.ceil(round(work_h / tau_h, 9)) * write_h


fig, axes = plt.subplots(1, len(mtbfs), figsize=(15, 4.2), sharey=True)
for ax, mt in zip(axes, mtbfs):
    b = best[mt]["wall"]
    w = np.sort(reps.loc[(reps[MT] == mt) & (reps[IV] == b[IV]), "wall_time_h"].to_numpy())
    ax.step(w, np.arange(1, len(w) + 1) / len(w), where="post", color=colors[mt],
            label=f"spot, τ = {b[IV]} ({b['tau_h']:.2f} h)")
    od = on_demand_wall_h(b["tau_h"])
    ax.axvline(od, color="black", ls="--", label=f"on-demand: {od:.1f} h")
    ax.set_title(f"MTBF {mt}: best interval {b[IV]} ({b['tau_h']:.2f} h)")
    ax.set_xlabel("Wall time (h)")
    ax.legend(loc="lower right", fontsize=9)
axes[0].set_ylabel("Share of replications finished (CDF)")
fig.suptitle("Wall time distribution at the best interval, against the same job on on-demand")
fig.tight_layout()
fig.savefig(FIG / "checkpoint-interval-cdf.png")
plt.show()''',
    '''md:## What if a spot launch waits an hour for capacity?

A question the file did not ask, answered without leaving the notebook:
the same sweep with `spot.capacity_wait` at one hour (it is an exponential
wait with a 15-minute mean in the file), as `--set` would give it.''',
    '''waits = spotsim.run(ROOT / "experiments/checkpoint-sweep.toml", replications=REPS,
                    set={"spot.capacity_wait": "1h"})
both = pd.DataFrame({
    "15m mean wait": metric(summary, "wall_time_h").set_index([IV, MT])["mean"],
    "1h wait": metric(waits.summary, "wall_time_h").set_index([IV, MT])["mean"],
})
both["extra_h"] = both["1h wait"] - both["15m mean wait"]
both.unstack(MT)["extra_h"].round(1)''',
    '''md:## Conclusion

Computed from the data above (so it always matches the figures):''',
    '''for mt in mtbfs:
    d = points[points[MT] == mt]
    bw, bc = best[mt]["wall"], best[mt]["cost"]
    y = d[d[IV] == "young"].iloc[0]
    dl = d[d[IV] == "daly"].iloc[0]
    w = reps.loc[(reps[MT] == mt) & (reps[IV] == bw[IV]), "wall_time_h"]
    od = on_demand_wall_h(bw["tau_h"])
    print(f"MTBF {mt}: shortest mean wall time at τ = {bw[IV]} ({bw['tau_h']:.2f} h): "
          f"{bw['wall']:.1f} h (p95 {bw['wall_p95']:.1f} h); cheapest at τ = {bc[IV]} ({bc['tau_h']:.2f} h): "
          f"${bc['cost']:.0f} vs ${bc['od_cost']:.0f} on-demand ({1 - bc['cost'] / bc['od_cost']:.0%} saved).")
    print(f"    (on-demand = 5 min startup + 100 h + one 5-min write per interval τ.) Young τ = {y['tau_h']:.2f} h costs {y['wall'] / bw['wall'] - 1:+.1%} wall time vs the best; "
          f"Daly τ = {dl['tau_h']:.2f} h {dl['wall'] / bw['wall'] - 1:+.1%}. "
          f"Spot takes {w.median() / od:.2f}x the on-demand wall time ({od:.1f} h) at the median.")
print()
print("Short intervals waste time on writes, long ones lose work to reclaims; the optimum grows with the MTBF "
      "(roughly √(2·write·MTBF), as Young and Daly predict), and cost follows wall time because spot billing "
      "is per held hour.")''',
]

# --------------------------------------------------------------------------
ENDPOINT = [
    '''md:# Endpoint autoscaling: which target and minimum fleet meet a 200 ms p99?

**Question** (`experiments/endpoint-autoscaling.toml`): with a day of diurnal
traffic plus a 3x spike at 14:00, which autoscaling target (invocations per
instance per minute) and minimum fleet keep latency under the 200 ms SLO, and
what does each design cost? Instances take 4-8 minutes to come into service.

**Input**, produced from the repository root by

```sh
spotsim run experiments/endpoint-autoscaling.toml
```

which writes `results/endpoint-autoscaling/summary.csv` and `timeline.csv`
(replication 0 of each design, minute by minute).''',
    SETUP,
    '''summary = read("endpoint-autoscaling", "summary")
timeline = read("endpoint-autoscaling", "timeline")
TG, MN = "inference.autoscaling.target", "inference.autoscaling.min"
SLO_MS = 200
designs = metric(summary, "cost_usd")[[TG, MN]].copy()
for m in ["cost_usd", "slo_attainment", "latency_p99_ms", "rejected", "instances_mean"]:
    designs[m] = metric(summary, m)["mean"]
    designs[m + "_lo"] = metric(summary, m)["ci95_low"]
    designs[m + "_hi"] = metric(summary, m)["ci95_high"]
designs["label"] = [f"target {t}, min {m}" for t, m in zip(designs[TG], designs[MN])]
designs[[TG, MN, "cost_usd", "slo_attainment", "latency_p99_ms", "rejected"]].round(4)''',
    '''# Timeline of replication 0 for one design (target 700, min 2 if swept).
sel = designs[(designs[TG] == 700) & (designs[MN] == 2)]
show = sel.index[0] if len(sel) else designs.index[0]
tl = timeline[timeline["point"] == show].sort_values("t_s")
t_h = tl["t_s"] / 3600

fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
axes[0].plot(t_h, tl["arrival_rate"], color="tab:blue", lw=0.8, label="arrivals")
axes[0].set_ylabel("Traffic (requests/s)")
axes[1].step(t_h, tl["instances_in_service"], where="post", color="tab:green", label="in service")
axes[1].step(t_h, tl["instances_pending"], where="post", color="tab:orange", label="pending (starting up)")
axes[1].set_ylabel("Instances")
axes[2].plot(t_h, tl["latency_p99_ms"], color="tab:red", lw=0.8, label="p99 latency per minute")
axes[2].axhline(SLO_MS, color="black", ls="--", lw=1, label=f"SLO {SLO_MS} ms")
axes[2].set_yscale("log")
axes[2].set_ylabel("p99 latency (ms, log)")
axes[2].set_xlabel("Time of day (h)")
axes[2].set_xticks(range(0, 25, 2))
for ax in axes:
    ax.legend(loc="upper left", fontsize=9)
d = designs.loc[show]
fig.suptitle(f"Endpoint timeline, replication 0, {d['label']}")
fig.tight_layout()
fig.savefig(FIG / "endpoint-timeline.png")
plt.show()''',
    '''# Cost against SLO attainment, Pareto front, chosen design.
def pareto(df):
    """Designs no other design beats on both cost (lower) and attainment (higher)."""
    keep = []
    for i, r in df.iterrows():
        dominated = ((df["cost_usd"] <= r["cost_usd"]) & (df["slo_attainment"] >= r["slo_attainment"])
                     & ((df["cost_usd"] < r["cost_usd"]) | (df["slo_attainment"] > r["slo_attainment"]))).any()
        if not dominated:
            keep.append(i)
    return df.loc[keep].sort_values("cost_usd")


front = pareto(designs)
ok = designs[designs["slo_attainment"] >= 0.99]
chosen = ok.loc[ok["cost_usd"].idxmin()] if len(ok) else designs.loc[designs["slo_attainment"].idxmax()]

fig, ax = plt.subplots(figsize=(8.5, 5.5))
targets = sorted(designs[TG].unique())
tcolors = dict(zip(targets, plt.cm.plasma(np.linspace(0.1, 0.75, len(targets)))))
markers = dict(zip(sorted(designs[MN].unique()), ["o", "s", "^", "D"]))
ax.step(front["slo_attainment"], front["cost_usd"], where="post", color="grey", ls="--", lw=1, label="Pareto front")
for _, r in designs.iterrows():
    ax.errorbar(r["slo_attainment"], r["cost_usd"],
                xerr=[[r["slo_attainment"] - r["slo_attainment_lo"]],
                      [min(r["slo_attainment_hi"], 1.0) - r["slo_attainment"]]],  # attainment cannot exceed 1
                yerr=[[r["cost_usd"] - r["cost_usd_lo"]], [r["cost_usd_hi"] - r["cost_usd"]]],
                fmt=markers[r[MN]], color=tcolors[r[TG]], ms=8, capsize=3, label=r["label"])
ax.plot(chosen["slo_attainment"], chosen["cost_usd"], "o", ms=20, mfc="none", mec="red", mew=2,
        label=("chosen" if len(ok) else "best available (none >= 0.99)") + f": {chosen['label']}")
ax.axvline(0.99, color="red", ls=":", lw=1, label="attainment goal 0.99")
ax.set_xlabel(f"SLO attainment (share of requests served within {SLO_MS} ms)")
ax.set_ylabel("Cost (USD per day)")
ax.set_title("Autoscaling designs: cost against SLO attainment (bars: 95% CI)")
ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
fig.tight_layout()
fig.savefig(FIG / "endpoint-pareto.png")
plt.show()''',
    '''md:## Conclusion''',
    '''print("Pareto-optimal designs (cheapest first):")
for _, r in front.iterrows():
    print(f"  {r['label']}: ${r['cost_usd']:.2f}/day, attainment {r['slo_attainment']:.4f}, "
          f"p99 {r['latency_p99_ms']:.0f} ms")
if len(ok):
    print(f"Chosen: {chosen['label']}, the cheapest design with SLO attainment >= 0.99 "
          f"(${chosen['cost_usd']:.2f}/day, attainment {chosen['slo_attainment']:.4f}, "
          f"p99 over the day {chosen['latency_p99_ms']:.0f} ms).")
else:
    print(f"No design reaches 0.99 attainment; the best is {chosen['label']} "
          f"(attainment {chosen['slo_attainment']:.4f}, ${chosen['cost_usd']:.2f}/day).")
worst = designs.loc[designs["latency_p99_ms"].idxmax()]
print(f"The day-long p99 ranges from {designs['latency_p99_ms'].min():.0f} ms to {worst['latency_p99_ms']:.0f} ms "
      f"({worst['label']}).")
over = tl[tl["latency_p99_ms"] > SLO_MS]
peak = tl.loc[tl["latency_p99_ms"].idxmax()]
near = tl[(tl["t_s"] - peak["t_s"]).abs() <= 15 * 60]
print(f"In the timeline ({designs.loc[show, 'label']}, replication 0) the per-minute p99 exceeds {SLO_MS} ms in "
      f"{len(over)} of {len(tl)} minutes; the worst minute starts at {peak['t_s'] / 3600:.2f} h with "
      f"{peak['latency_p99_ms']:.0f} ms. Within 15 minutes of it up to {int(near['instances_pending'].max())} "
      f"instances were pending while {int(near['instances_in_service'].min())}-{int(near['instances_in_service'].max())} "
      "served: the 4-8 minute startup makes the fleet lag the spike, and a lower target or a larger minimum buys headroom.")''',
]

# --------------------------------------------------------------------------
SERVERLESS = [
    '''md:# Serverless or a provisioned endpoint?

**Question** (`experiments/serverless-vs-endpoint.toml`): at very sparse
traffic serverless costs almost nothing but most requests pay a cold start; at
steady traffic a small always-on endpoint (one ml.c5.xlarge, 4 workers) is
cheaper and faster. Where do they cross over, in cost and in p99 latency?

**Input**, produced from the repository root by

```sh
spotsim run experiments/serverless-vs-endpoint.toml
```

which writes `results/serverless-vs-endpoint/summary.csv`. Both modes see the
same requests at every traffic level (common random numbers).''',
    SETUP,
    '''summary = read("serverless-vs-endpoint", "summary")
MODE, RATE = "inference.mode", "traffic.synthetic.mean_rps"
tab = {}
for m in ["cost_usd", "latency_p99_ms", "cold_start_frac", "slo_attainment"]:
    rows = metric(summary, m)
    tab[m] = rows.pivot(index=RATE, columns=MODE, values="mean").sort_index()
    tab[m + "_lo"] = rows.pivot(index=RATE, columns=MODE, values="ci95_low").sort_index()
    tab[m + "_hi"] = rows.pivot(index=RATE, columns=MODE, values="ci95_high").sort_index()
modes = list(tab["cost_usd"].columns)
pd.concat({m: tab[m] for m in ["cost_usd", "latency_p99_ms", "cold_start_frac"]}, axis=1).round(4)''',
    '''def crossover(a, b):
    """First rate where a - b changes sign, interpolated linearly in log(rate) and log(value)."""
    x = np.log(a.index.to_numpy(float))
    diff = np.log(a.to_numpy(float)) - np.log(b.to_numpy(float))
    for i in range(len(x) - 1):
        if np.isfinite(diff[i]) and np.isfinite(diff[i + 1]) and diff[i] * diff[i + 1] < 0:
            f = diff[i] / (diff[i] - diff[i + 1])
            return float(np.exp(x[i] + f * (x[i + 1] - x[i])))
    return None


cost_x = crossover(tab["cost_usd"]["serverless"], tab["cost_usd"]["endpoint"])
p99 = tab["latency_p99_ms"]
close = p99.index[(p99["serverless"] <= 1.1 * p99["endpoint"])]
lat_x = float(close.min()) if len(close) else None
lat_cross = crossover(p99["serverless"], p99["endpoint"])
print("cost crossover (req/s):", cost_x, "| serverless p99 within 10% of endpoint from (req/s):", lat_x,
      "| p99 sign change at:", lat_cross)''',
    '''fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharex=True)
mcol = {"endpoint": "tab:blue", "serverless": "tab:orange"}
for ax, (m, label) in zip(axes, [("cost_usd", "Cost (USD per day, log)"),
                                 ("latency_p99_ms", "p99 latency (ms, log)"),
                                 ("cold_start_frac", "Requests with a cold start (share)")]):
    for mode in modes:
        y = tab[m][mode]
        ax.plot(y.index, y, "-o", ms=4, color=mcol.get(mode), label=mode)
        ax.fill_between(y.index, tab[m + "_lo"][mode].clip(lower=1e-9), tab[m + "_hi"][mode],
                        color=mcol.get(mode), alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("Mean traffic (requests/s, log)")
    ax.set_ylabel(label)
    if m != "cold_start_frac":
        ax.set_yscale("log")
if cost_x:
    axes[0].axvline(cost_x, color="black", ls="--", lw=1, label=f"cost crossover {cost_x:.1f} req/s")
if lat_x:
    axes[1].axvline(lat_x, color="black", ls=":", lw=1, label=f"serverless p99 within 10%\\nfrom {lat_x:g} req/s")
axes[0].set_title("Cost per day")
axes[1].set_title("p99 latency (band: 95% CI)")
axes[2].set_title("Cold-start share (serverless)")
for ax in axes:
    ax.legend(fontsize=9, loc="best")
fig.suptitle("Serverless against a one-instance endpoint (ml.c5.xlarge) across traffic levels")
fig.tight_layout()
fig.savefig(FIG / "serverless-vs-endpoint.png")
plt.show()''',
    '''md:## Conclusion''',
    '''c = tab["cost_usd"]
lo, hi = c.index.min(), c.index.max()
print(f"Endpoint cost is flat at ${c['endpoint'].mean():.2f}/day; serverless grows with traffic, "
      f"from ${c.loc[lo, 'serverless']:.4f}/day at {lo:g} req/s to ${c.loc[hi, 'serverless']:.2f}/day at {hi:g} req/s.")
if cost_x:
    print(f"Cost crossover: serverless is cheaper below about {cost_x:.1f} req/s, the endpoint above.")
else:
    cheaper = "serverless" if (c["serverless"] < c["endpoint"]).all() else "endpoint"
    print(f"No cost crossover in the swept range: {cheaper} is cheaper throughout.")
if lat_x:
    sl = p99.loc[p99.index.min()]
    print(f"p99 latency: at {p99.index.min():g} req/s serverless p99 is {sl['serverless']:.0f} ms (cold starts) "
          f"against {sl['endpoint']:.0f} ms; from {lat_x:g} req/s upward serverless p99 is within 10% of the endpoint's "
          "as instances stay warm.")
else:
    print("Serverless p99 stays more than 10% above the endpoint's at every swept rate.")
if cost_x and lat_x:
    print(f"So between {lat_x:g} and {cost_x:.1f} req/s serverless is both cheaper and about as fast; "
          f"below {lat_x:g} req/s it is cheaper but slow at the tail; above {cost_x:.1f} req/s take the endpoint.")''',
]

# --------------------------------------------------------------------------
ZONES = [
    '''md:# Availability zones, and training on real spot traces

**Questions.**
1. `experiments/zones-availability.toml`: what availability does a second or
   third availability zone buy an endpoint, and what does it cost? Zones fail
   about every 2000 h for a couple of hours.
2. `experiments/real-spot-v100.toml`: how does a 24-hour V100 training job
   fare on real AWS spot availability (Feb-Apr 2023) in three zones, and which
   checkpoint interval suits each?

**Input**, produced from the repository root by

```sh
spotsim run experiments/zones-availability.toml
spotsim run experiments/real-spot-v100.toml
```

which write `results/zones-availability/summary.csv` and
`results/real-spot-v100/summary.csv`.''',
    SETUP,
    '''zs = read("zones-availability", "summary")
ZC, MN = "zones.count", "inference.autoscaling.min"
HOURS_PER_YEAR = 8766
z = metric(zs, "availability")[[ZC, MN]].copy()
av = metric(zs, "availability")
z["availability"] = av["mean"]
z["down_h_yr"] = (1 - av["mean"]).clip(lower=0) * HOURS_PER_YEAR
z["down_lo"] = (1 - av["ci95_high"]).clip(lower=0) * HOURS_PER_YEAR
z["down_hi"] = (1 - av["ci95_low"]).clip(lower=0) * HOURS_PER_YEAR
z["cost_usd"] = metric(zs, "cost_usd")["mean"]
days = 180  # the experiment's traffic.duration
z["cost_usd_yr"] = z["cost_usd"] * 365.25 / days
z = z.sort_values([MN, ZC])
z.round(6)''',
    '''FLOOR = 0.01  # h/year; a design with no downtime observed is drawn here
fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
mins = sorted(z[MN].unique())
mcolors = dict(zip(mins, plt.cm.viridis(np.linspace(0.1, 0.8, len(mins)))))
for m in mins:
    d = z[z[MN] == m]
    y = d["down_h_yr"].clip(lower=FLOOR)
    axes[0].errorbar(d[ZC] + (m - 2) * 0.04, y,
                     yerr=[(y - d["down_lo"].clip(lower=FLOOR)).clip(lower=0), (d["down_hi"].clip(lower=FLOOR) - y).clip(lower=0)],
                     fmt="-o", color=mcolors[m], capsize=3, label=f"min {m} instance(s)")
    zero = d[d["down_h_yr"] <= 0]
    axes[0].plot(zero[ZC] + (m - 2) * 0.04, [FLOOR] * len(zero), "v", ms=10, color=mcolors[m], mec="black")
    axes[1].plot(d[ZC], d["cost_usd_yr"], "-o", color=mcolors[m], label=f"min {m} instance(s)")
axes[0].plot([], [], "v", color="grey", mec="black", ms=10, label=f"no downtime observed (drawn at {FLOOR})")
axes[0].set_yscale("log")
axes[0].set_ylabel("Downtime (hours per year, log)")
axes[0].set_title("Downtime: no instance in service (bars: 95% CI, clipped at the floor)")
axes[1].set_ylabel("Cost (USD per year)")
axes[1].set_title("Endpoint cost")
for ax in axes:
    ax.set_xlabel("Availability zones")
    ax.set_xticks(sorted(z[ZC].unique()))
    ax.legend(fontsize=9)
fig.suptitle("Endpoint on ml.m5.xlarge spread over zones (zone MTBF 2000 h)")
fig.tight_layout()
fig.savefig(FIG / "zones-availability.png")
plt.show()''',
    '''rs = read("real-spot-v100", "summary")
SP, IV = "spot.interruptions", "training.checkpoint.interval"
r = metric(rs, "checkpoint_interval_h")[[SP, IV]].copy()
r["zone"] = r[SP].str.extract(r"([a-z]{2}-[a-z]+-\\d[a-z])", expand=False)
r["tau_h"] = metric(rs, "checkpoint_interval_h")["mean"]
for m in ["cost_usd", "wall_time_h", "on_demand_cost_usd", "savings_frac", "interruptions", "waiting_time_h"]:
    r[m] = metric(rs, m)["mean"]
    r[m + "_lo"] = metric(rs, m)["ci95_low"]
    r[m + "_hi"] = metric(rs, m)["ci95_high"]
r["wall_p95"] = metric(rs, "wall_time_h")["p95"]
r = r.sort_values(["zone", "tau_h"])
r[["zone", IV, "tau_h", "cost_usd", "savings_frac", "wall_time_h", "wall_p95", "interruptions"]].round(3)''',
    '''fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharex=True)
zones = sorted(r["zone"].unique())
zcolors = dict(zip(zones, ["tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple"]))
for i, zn in enumerate(zones):
    d = r[r["zone"] == zn]
    c = zcolors[zn]
    # decreasing marker sizes keep zones with near-equal costs visible on top of each other
    axes[0].plot(d["tau_h"], d["cost_usd"], "-o", color=c, ms=9 - 2 * i, label=zn)
    axes[0].fill_between(d["tau_h"], d["cost_usd_lo"], d["cost_usd_hi"], color=c, alpha=0.2, lw=0)
    axes[1].plot(d["tau_h"], d["wall_time_h"], "-o", color=c)
    axes[1].fill_between(d["tau_h"], d["wall_time_h_lo"], d["wall_time_h_hi"], color=c, alpha=0.2, lw=0)
    axes[1].plot(d["tau_h"], d["wall_p95"], "--", color=c)
od = r.groupby("tau_h")["on_demand_cost_usd"].mean()
axes[0].plot(od.index, od, "k:", label="on-demand")
axes[0].set_ylabel("Cost (USD)")
axes[0].set_title("Mean cost of the 24 h job (band: 95% CI)")
axes[1].set_yscale("log")
axes[1].set_ylabel("Wall time (h, log)")
axes[1].set_title("Wall time: mean (solid, 95% CI band) and p95 (dashed)")
for ax in axes:
    log_x_ticks(ax, [0.25, 0.5, 1, 2], ["15m", "30m", "1h", "2h"])
    ax.set_xlabel("Checkpoint interval (h, log)")
axes[1].yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
axes[1].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
axes[1].set_yticks([20, 30, 50, 100, 200, 300, 500])
axes[0].legend(fontsize=9, loc="lower left", bbox_to_anchor=(0.02, 0.15))
handles = [plt.Line2D([], [], color=zcolors[zn], lw=2, label=zn) for zn in zones]
handles += [plt.Line2D([], [], color="grey", ls="-", label="mean"), plt.Line2D([], [], color="grey", ls="--", label="p95")]
axes[1].legend(handles=handles, fontsize=9, loc="center right")
fig.suptitle("24 h V100 training on real AWS spot traces (Feb-Apr 2023)")
fig.tight_layout()
fig.savefig(FIG / "real-spot-v100.png")
plt.show()''',
    '''md:## Conclusion''',
    '''print("Zones (downtime per year, from availability):")
for m in mins:
    d = z[z[MN] == m].set_index(ZC)
    parts = [f"{n} zone(s) {d.loc[n, 'down_h_yr']:.2f} h (${d.loc[n, 'cost_usd_yr']:,.0f}/yr)" for n in d.index]
    print(f"  min {m}: " + "; ".join(parts))
one, two = z[z[ZC] == z[ZC].min()]["down_h_yr"].mean(), z[z[ZC] == sorted(z[ZC].unique())[1]]["down_h_yr"].mean()
print(f"  A second zone cuts mean downtime from about {one:.1f} to {two:.2f} h/year (a {one / max(two, 1e-9):.0f}x cut) "
      f"for under {z.groupby(MN)['cost_usd_yr'].agg(lambda c: c.max() / c.min() - 1).max():.1%} more cost;")
top = z[z[ZC] == z[ZC].max()].set_index(MN)["down_h_yr"]
print(f"  with {z[ZC].max()} zones downtime is " + ", ".join(f"{v:.2f} h/year at min {m}" for m, v in top.items())
      + ": beyond two zones, the minimum fleet decides the rest (cost grows with the minimum, not the zones).")
print()
print("Real spot traces (best interval per zone by mean cost):")
for zn in zones:
    d = r[r["zone"] == zn]
    b = d.loc[d["cost_usd"].idxmin()]
    print(f"  {zn}: τ = {b[IV]}: ${b['cost_usd']:.2f} vs ${b['on_demand_cost_usd']:.2f} on-demand "
          f"({b['savings_frac']:.0%} saved), mean wall time {b['wall_time_h']:.1f} h (p95 {b['wall_p95']:.1f} h), "
          f"{b['interruptions']:.1f} interruptions.")
spread_iv = r.groupby("zone")["cost_usd"].agg(lambda c: c.max() - c.min()).max()
best_cost = r.groupby("zone")["cost_usd"].min()
walls = r.groupby("zone")["wall_time_h"].min()
print(f"Changing the interval moves the mean cost by at most ${spread_iv:.2f} within a zone, while the zones differ "
      f"by ${best_cost.max() - best_cost.min():.2f} at their best interval and the best mean wall time ranges from "
      f"{walls.min():.0f} h ({walls.idxmin()}) to {walls.max():.0f} h ({walls.idxmax()}) for 24 h of work: "
      "the zone matters far more than the interval; where capacity is scarce the job mostly waits.")''',
]

# --------------------------------------------------------------------------
RECOMMEND = [
    '''md:# Which endpoint design is cheapest and meets the latency objectives?

**Question** (`experiments/endpoint-recommendation.toml`): which instance type,
minimum fleet and autoscaling target serve a day of diurnal traffic at the
lowest cost while the day's p99 latency stays under 250 ms on average and at
least 99% of requests meet the 200 ms SLO?

**Input**, produced from the repository root by

```sh
spotsim recommend experiments/endpoint-recommendation.toml
```

which writes `results/endpoint-recommendation/recommendations.csv` (one row per
design: status, rank, replications, the objective's mean and interval, every
constraint's estimate, interval and verdict) and `rounds.csv` (the survivors
after each round of the sequential search; docs/recommend.md).''',
    SETUP,
    '''def read_result(name, file):
    path = ROOT / "results" / name / file
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `spotsim recommend experiments/{name}.toml` first")
    return pd.read_csv(path)


rec = read_result("endpoint-recommendation", "recommendations.csv")
rounds = read_result("endpoint-recommendation", "rounds.csv")
rec["type"] = rec["inference"].str.extract(r"instance = ([^,]+)")
# The latency constraint is judged over all counted arrivals (docs/recommend.md).
COST, LAT, SLO = "cost_usd.mean", "latency_p99_all_ms.mean", "slo_attainment.mean"
rec[["rank", "status", "type", "inference.autoscaling.min", "inference.autoscaling.target", "replications",
     COST, LAT, SLO]].head(12)''',
    '''LIMIT = 250.0
fig, ax = plt.subplots(figsize=(9, 5.5))
ax.axvspan(0, LIMIT, color="tab:green", alpha=0.08, label=f"feasible region: p99 <= {LIMIT:.0f} ms")
markers = {t: m for t, m in zip(sorted(rec["type"].unique()), "osD^v")}
status_color = {"best": "tab:red", "tie": "tab:orange", "feasible": "tab:green", "undecided": "tab:olive",
                "dominated": "tab:blue", "infeasible": "tab:gray"}
for (t, st), d in rec.groupby(["type", "status"]):
    ax.scatter(d[LAT], d[COST], marker=markers[t], color=status_color.get(st, "black"), s=40, alpha=0.8,
               label=f"{t}, {st}")
best = rec[rec["status"] == "best"]
ax.scatter(best[LAT], best[COST], s=300, facecolors="none", edgecolors="tab:red", lw=2, label="chosen")
ax.set_xscale("log")
ax.set_xlabel("day's p99 latency, mean over replications (ms, log scale)")
ax.set_ylabel("cost per day, mean (USD)")
ax.set_title("Every design: cost against latency; the chosen one circled")
ax.legend(fontsize=7, ncol=2, loc="upper right")
fig.tight_layout()
fig.savefig(FIG / "recommend-cost-latency.png")
plt.show()''',
    '''fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
ax = axes[0]
ax.step(rounds["spent"], rounds["survivors"], where="post", marker="o")
ax.set_xlabel("replications spent (all designs)")
ax.set_ylabel("designs still in contention")
ax.set_title("Elimination round by round")
ax.set_ylim(0, len(rec) + 1)
ax = axes[1]
order = rec.sort_values("rank")
ax.bar(range(len(order)), order["replications"], color=[status_color.get(s, "black") for s in order["status"]])
ax.set_xlabel("design, by rank")
ax.set_ylabel("replications it got")
ax.set_title("Where the replications went (colour: status)")
fig.tight_layout()
fig.savefig(FIG / "recommend-rounds.png")
plt.show()''',
    '''b = rec[rec["status"] == "best"]
if len(b):
    b = b.iloc[0]
    print(f"Chosen: {b['type']}, min {b['inference.autoscaling.min']}, target {b['inference.autoscaling.target']}: "
          f"${b[COST]:.2f}/day [{b['cost_usd.mean_low']:.2f}, {b['cost_usd.mean_high']:.2f}], "
          f"p99 {b[LAT]:.0f} ms, SLO attainment {b[SLO]:.4f}.")
else:
    print("No design was chosen with the stated confidence:", ", ".join(sorted(rec["status"].unique())))
exhaustive = rec["replications"].max() * len(rec)
print(f"The search spent {rounds['spent'].iloc[-1]} replications in {len(rounds)} round(s); running every design "
      f"to {rec['replications'].max()} would take {exhaustive}.")''',
]


# --------------------------------------------------------------------------
RIGHT_SIZING = [
    '''md:# Right-sizing: which instance type for this model?

**Questions.** (1) For a BERT-base endpoint, which instance type and fleet
hold p99 latency under 100 ms for the least money, at 15 and at 60 requests
per second (`experiments/encoder-gpu-or-cpu.toml`)? (2) For BERT-large
pre-training, which instance type and node count give the cheapest job and
the shortest p95 wall time, on spot and on-demand
(`experiments/training-instance-spot.toml`)?

Both sweep `instance`; the model profiles (`bert-base`,
`bert-large-pretraining`, see `spotsim profiles` and `docs/profiles.md`) turn
each type into a service time and workers, or a compute time and checkpoint
times. **Input**, from the repository root:

```sh
spotsim run experiments/encoder-gpu-or-cpu.toml
spotsim run experiments/training-instance-spot.toml
```''',
    SETUP,
    '''summary = read("encoder-gpu-or-cpu", "summary")
INST, N, RPS = "inference.instance", "inference.initial_instances", "traffic.synthetic.mean_rps"
SLO_MS = 100.0
ep = metric(summary, "latency_p99_ms")[[INST, N, RPS]].copy()
ep["p99_ms"] = metric(summary, "latency_p99_ms")["mean"]
ep["p99_ms_hi"] = metric(summary, "latency_p99_ms")["ci95_high"]
ep["cost_usd_h"] = metric(summary, "cost_usd")["mean"] / 1.0   # the run is one hour
ep["attainment"] = metric(summary, "slo_attainment")["mean"]
ep["holds"] = ep["p99_ms"] <= SLO_MS
types = list(dict.fromkeys(ep[INST]))
colors = dict(zip(types, plt.cm.tab10.colors))
markers = {1: "o", 2: "s", 4: "D"}
ep.round(3)''',
    '''rates = sorted(ep[RPS].unique())
fig, axes = plt.subplots(1, len(rates), figsize=(13, 4.6), sharey=True)
for ax, rate in zip(axes, rates):
    d = ep[ep[RPS] == rate]
    for _, r in d.iterrows():
        ax.plot(r["p99_ms"], r["cost_usd_h"], markers[r[N]], ms=9, color=colors[r[INST]],
                mfc=colors[r[INST]] if r["holds"] else "white")
    ax.axvline(SLO_MS, color="black", ls="--", lw=1)
    ax.text(SLO_MS * 1.1, ax.get_ylim()[1] * 0.95 if ax.get_ylim()[1] > 0 else 1, "objective 100 ms", va="top")
    ax.set_xscale("log")
    ax.set_xlabel("p99 latency (ms, log scale; mean over replications)")
    ax.set_title(f"{rate:g} requests/s")
axes[0].set_ylabel("Cost (USD per hour)")
handles = [plt.Line2D([], [], ls="", marker="o", color=colors[t], ms=8, label=t) for t in types]
handles += [plt.Line2D([], [], ls="", marker=m, color="gray", ms=8, label=f"{n} instance(s)") for n, m in markers.items()]
handles += [plt.Line2D([], [], ls="", marker="o", mfc="white", mec="gray", ms=8, label="misses the objective")]
fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False)
fig.suptitle("BERT-base endpoint (profile bert-base): cost against p99 latency per instance type and fleet")
fig.tight_layout(rect=(0, 0.13, 1, 1))
fig.savefig(FIG / "right-sizing-endpoint.png")
plt.show()''',
    '''# The cheapest fleet that holds the objective, per traffic rate (computed from the data).
for rate in rates:
    ok = ep[(ep[RPS] == rate) & ep["holds"]].sort_values("cost_usd_h")
    best = ok.iloc[0]
    print(f"{rate:g} req/s: {best[INST]} x {best[N]} at ${best['cost_usd_h']:.2f}/h, p99 {best['p99_ms']:.1f} ms; "
          f"cheapest fleet per type that holds it: "
          + ", ".join(f"{t} x {g.iloc[0][N]} (${g.iloc[0]['cost_usd_h']:.2f}/h)" for t, g in ok.groupby(INST, sort=False)))''',
    '''summary = read("training-instance-spot", "summary")
TI, TN, MK = "training.instance", "training.instances", "training.market"
tr = metric(summary, "wall_time_h")[[TI, TN, MK]].copy()
tr["wall_p95_h"] = metric(summary, "wall_time_h")["p95"]
tr["cost"] = metric(summary, "cost_usd")["mean"]
tr["cost_lo"] = metric(summary, "cost_usd")["ci95_low"]
tr["cost_hi"] = metric(summary, "cost_usd")["ci95_high"]
ttypes = list(dict.fromkeys(tr[TI]))
tcolors = dict(zip(ttypes, plt.cm.tab10.colors))
tr.round(2)''',
    '''fig, ax = plt.subplots(figsize=(10, 5.5))
for t in ttypes:
    for market, fill in [("spot", True), ("on-demand", False)]:
        d = tr[(tr[TI] == t) & (tr[MK] == market)].sort_values(TN)
        ax.plot(d["wall_p95_h"], d["cost"], "-", color=tcolors[t], alpha=0.5)
        for _, r in d.iterrows():
            ax.plot(r["wall_p95_h"], r["cost"], "o" if r[TN] == 1 else "s", ms=8, color=tcolors[t],
                    mfc=tcolors[t] if fill else "white")
            ax.annotate(f"x{r[TN]}", (r["wall_p95_h"], r["cost"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
ax.set_xscale("log")
ax.set_xlabel("p95 wall time (h, log scale)")
ax.set_ylabel("Mean cost (USD)")
handles = [plt.Line2D([], [], ls="", marker="o", color=tcolors[t], ms=8, label=t) for t in ttypes]
handles += [plt.Line2D([], [], ls="", marker="o", color="gray", ms=8, label="spot"),
            plt.Line2D([], [], ls="", marker="o", mfc="white", mec="gray", ms=8, label="on-demand")]
ax.legend(handles=handles, loc="center right", fontsize=9)
ax.set_title("BERT-large pre-training, 400 reference hours (profile bert-large-pretraining):\\n"
             "cost against p95 wall time per instance type and node count (x1, x4)")
fig.tight_layout()
fig.savefig(FIG / "right-sizing-training.png")
plt.show()''',
    '''# Cheapest and fastest designs, and what spot saves (computed from the data).
spot = tr[tr[MK] == "spot"]
cheap = spot.loc[spot["cost"].idxmin()]
fast = spot.loc[spot["wall_p95_h"].idxmin()]
print(f"cheapest on spot: {cheap[TI]} x {cheap[TN]}: ${cheap['cost']:.0f}, p95 {cheap['wall_p95_h']:.1f} h")
print(f"fastest on spot:  {fast[TI]} x {fast[TN]}: ${fast['cost']:.0f}, p95 {fast['wall_p95_h']:.1f} h")
both = spot.merge(tr[tr[MK] == "on-demand"], on=[TI, TN], suffixes=("", "_od"))
both["saves"] = 1 - both["cost"] / both["cost_od"]
print(f"spot saves {both['saves'].min():.0%} to {both['saves'].max():.0%} against on-demand, "
      f"and adds {(both['wall_p95_h'] - both['wall_p95_h_od']).min():.1f} to "
      f"{(both['wall_p95_h'] - both['wall_p95_h_od']).max():.1f} h to the p95 wall time")''',
]


# --------------------------------------------------------------------------
DEADLINE = [
    '''md:# Deadline-aware spot training: what each policy saves

**Question** (`experiments/deadline-policies-v100.toml`): a 24-hour V100 job
must finish by a deadline 5% to 50% longer than it takes on on-demand. On
the real us-east-1c spot trace (scarce capacity, Feb-Apr 2023), what does
each policy save over on-demand, does it meet the deadline, and how far is
it from the cheapest schedule possible? This is the shape of Can't Be
Late's main figure: savings against deadline slack per policy, with the
optimum (`optimal`, which knows the trace) as the bound.

**Input**, produced from the repository root by

```sh
spotsim run experiments/deadline-policies-v100.toml
```

Rules: [docs/deadline-policies.md](../docs/deadline-policies.md).''',
    SETUP,
    '''s = read("deadline-policies-v100", "summary")
DL, PN = "training.deadline", "training.policy.name"
d = metric(s, "cost_usd")[[DL, PN]].copy()
for m in ["cost_usd", "on_demand_cost_usd", "deadline_met", "wall_time_h", "spot_time_h"]:
    d[m] = metric(s, m)["mean"]
    d[m + "_lo"] = metric(s, m)["ci95_low"]
    d[m + "_hi"] = metric(s, m)["ci95_high"]
d["deadline_h"] = d[DL].str.rstrip("h").astype(float)
od_time = d[d[PN] == "on-demand"]["wall_time_h"].mean()
d["slack"] = d["deadline_h"] / od_time - 1
d["savings"] = 1 - d["cost_usd"] / d["on_demand_cost_usd"]
d["savings_lo"] = 1 - d["cost_usd_hi"] / d["on_demand_cost_usd"]
d["savings_hi"] = 1 - d["cost_usd_lo"] / d["on_demand_cost_usd"]
opt = d[d[PN] == "optimal"].set_index(DL)["cost_usd"]
d["vs_optimal"] = d["cost_usd"] / d[DL].map(opt)
d = d.sort_values([PN, "slack"])
d[[PN, DL, "slack", "cost_usd", "savings", "deadline_met", "vs_optimal"]].round(3)''',
    '''STYLE = {"optimal": ("k", "--"), "uniform-progress": ("tab:blue", "-"), "greedy": ("tab:orange", "-"),
         "spot-only": ("tab:red", ":"), "on-demand": ("tab:gray", "-")}
fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharex=True)
for name, (c, ls) in STYLE.items():
    p = d[d[PN] == name]
    axes[0].plot(100 * p["slack"], 100 * p["savings"], ls, marker="o", color=c, label=name)
    axes[0].fill_between(100 * p["slack"], 100 * p["savings_lo"], 100 * p["savings_hi"], color=c, alpha=0.15, lw=0)
    axes[1].plot(100 * p["slack"], 100 * p["deadline_met"], ls, marker="o", color=c, label=name, ms=4)
o = d[d[PN] == "optimal"]
axes[0].fill_between(100 * o["slack"], 100 * o["savings"], 100, color="k", alpha=0.06, lw=0,
                     label="beyond the optimum")
axes[0].set_ylim(-5, 70)
axes[0].set_ylabel("Savings over on-demand (%)")
axes[0].set_title("Savings (95% CI); grey: beyond the optimum, reached only by missing deadlines")
axes[1].set_ylabel("Deadlines met (%)")
axes[1].set_title("Share of jobs that met the deadline")
for ax in axes:
    ax.set_xlabel("Deadline slack over on-demand (%)")
axes[0].legend(fontsize=9, loc="upper left")
fig.suptitle("24 h V100 job on the us-east-1c spot trace: policies against the deadline")
fig.tight_layout()
fig.savefig(FIG / "deadline-policies.png")
plt.show()''',
    '''md:## Conclusion''',
    '''for name in ["uniform-progress", "greedy", "spot-only", "optimal"]:
    p = d[d[PN] == name]
    print(f"{name:>16}: savings {p['savings'].min():.0%} to {p['savings'].max():.0%} over the slacks, "
          f"deadlines met {p['deadline_met'].min():.0%} to {p['deadline_met'].max():.0%}, "
          f"cost {p['vs_optimal'].min():.2f} to {p['vs_optimal'].max():.2f} times the optimum")
up, gr = d[d[PN] == "uniform-progress"].set_index(DL), d[d[PN] == "greedy"].set_index(DL)
gap = ((gr["cost_usd"] - opt) / (up["cost_usd"] - opt)).dropna()
print(f"Uniform progress closes the gap to the optimum by {gap.min():.2f}x to {gap.max():.2f}x compared with greedy "
      "(Can't Be Late reports about 2x on its traces); both keep every deadline, spot-only keeps few on this scarce zone.")''',
]

# --------------------------------------------------------------------------
LLM = [
    '''md:# Serving Llama-3-8B: tail latency and cost per token against load

**Question** (`experiments/llm-load-by-gpu.toml`): on one instance of each
single-GPU type (A10G, L4, L40S), how do the p99 time to first token (TTFT),
the p99 time per output token (TPOT) and the cost per million generated tokens
move with the request rate, and where does each saturate? The objective is
TTFT <= 1 s and TPOT <= 60 ms for a request.

**Input**, produced from the repository root by

```sh
spotsim run experiments/llm-load-by-gpu.toml
```

which writes `results/llm-load-by-gpu/summary.csv`. The token-level engine
(`engine = "llm"`, docs/llm-serving.md) takes its step times from the roofline:
the model's weights and KV cache over the GPU's memory bandwidth, its FLOPs over
the GPU's dense fp16 peak, with efficiencies fitted on published measurements.
The second part compares that roofline with the published measurements it was
not fitted to (`tests/data/llm/heldout.csv`).''',
    SETUP,
    '''summary = read("llm-load-by-gpu", "summary")
TYPE, RATE = "inference.instance", "traffic.synthetic.mean_rps"
tab = {}
for m in ["ttft_p99_ms", "tpot_p99_ms", "cost_per_million_output_tokens_usd", "slo_attainment", "preemptions"]:
    rows = metric(summary, m)
    tab[m] = rows.pivot(index=RATE, columns=TYPE, values="mean").sort_index()
    tab[m + "_lo"] = rows.pivot(index=RATE, columns=TYPE, values="ci95_low").sort_index()
    tab[m + "_hi"] = rows.pivot(index=RATE, columns=TYPE, values="ci95_high").sort_index()
types = list(tab["ttft_p99_ms"].columns)
pd.concat({m: tab[m] for m in ["ttft_p99_ms", "tpot_p99_ms", "cost_per_million_output_tokens_usd",
                               "slo_attainment"]}, axis=1).round(3)''',
    '''fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharex=True)
tcol = dict(zip(types, ["tab:blue", "tab:orange", "tab:green", "tab:red"]))
panels = [("ttft_p99_ms", "p99 TTFT (ms, log)", 1000), ("tpot_p99_ms", "p99 TPOT (ms, log)", 60),
          ("cost_per_million_output_tokens_usd", "USD per million output tokens (log)", None)]
rates = tab["ttft_p99_ms"].index.to_numpy(float)
for ax, (m, label, objective) in zip(axes, panels):
    for t in types:
        y, lo, hi = tab[m][t], tab[m + "_lo"][t], tab[m + "_hi"][t]
        ax.plot(rates, y, "-", color=tcol[t], label=t)
        ax.fill_between(rates, lo.clip(lower=1e-9), hi, color=tcol[t], alpha=0.15)
        ok = tab["slo_attainment"][t] >= 0.99
        ax.plot(rates[ok.to_numpy()], y[ok], "o", color=tcol[t], ms=6)
    if objective:
        ax.axhline(objective, color="k", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_ylabel(label)
    log_x_ticks(ax, rates, [f"{r:g}" for r in rates])
    ax.set_xlabel("Requests per second (one instance)")
axes[0].legend(fontsize=9)
axes[0].set_title("Time to first token; dots: SLO attainment >= 0.99")
axes[1].set_title("Time per output token (objective dashed)")
axes[2].set_title("Cost per million generated tokens")
fig.suptitle("Llama-3-8B on one GPU (roofline step times, chunked prefill)")
fig.tight_layout()
fig.savefig(FIG / "llm-load-by-gpu.png")
plt.show()''',
    '''md:## The roofline against published measurements

Each row of `tests/data/llm/heldout.csv` is a published measurement (engine,
model, GPUs, token counts, one request or a fixed batch) that the roofline's
constants were **not** fitted to, with the value spotsim's engine gives for the
same design; the test `llm_validation` recomputes them. Grey: TGI 1.0.3 with
tensor parallelism, whose per-token floor the roofline does not model.''',
    '''held = pd.read_csv(ROOT / "tests" / "data" / "llm" / "heldout.csv")
held["tgi_tp"] = held["engine"].str.startswith("TGI") & (held["tp"] > 1)
fig, ax = plt.subplots(figsize=(6.2, 5.6))
for grey, g in held.groupby("tgi_tp"):
    ax.scatter(g["measured_ms"], g["simulated_ms"], color="0.6" if grey else "tab:blue", s=30,
               label="TGI 1.0.3, tensor parallel" if grey else "other rows")
lims = [held[["measured_ms", "simulated_ms"]].min().min() * 0.7, held[["measured_ms", "simulated_ms"]].max().max() * 1.4]
ax.plot(lims, lims, "k-", lw=1)
for f in (0.8, 1.25):
    ax.plot(lims, [l * f for l in lims], "k:", lw=0.8)
ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlim(lims); ax.set_ylim(lims)
ax.set_xlabel("Measured (ms)"); ax.set_ylabel("spotsim roofline (ms)")
ax.set_title("Held-out measurements (dotted: +-20-25%)")
ax.legend(fontsize=9)
fig.tight_layout()
fig.savefig(FIG / "llm-validation.png")
plt.show()
held[["id", "metric", "measured_ms", "simulated_ms", "error_pct"]]''',
    '''md:## Conclusion''',
    '''for t in types:
    ok = tab["slo_attainment"][t] >= 0.99
    if ok.any():
        r = ok[ok].index.max()
        print(f"{t}: meets the objective up to {r:g} requests/s, at "
              f"{tab['cost_per_million_output_tokens_usd'].loc[r, t]:.2f} USD per million output tokens there")
    else:
        low = tab["ttft_p99_ms"].index.min()
        print(f"{t}: below 0.99 SLO attainment at every load (at {low:g} requests/s: attainment "
              f"{tab['slo_attainment'].loc[low, t]:.3f}, p99 TTFT {tab['ttft_p99_ms'].loc[low, t]:.0f} ms, "
              f"p99 TPOT {tab['tpot_p99_ms'].loc[low, t]:.0f} ms)")
good = held[~held["tgi_tp"]]
print(f"Roofline against {len(good)} held-out measurements outside TGI's tensor parallelism: median |error| "
      f"{good['error_pct'].abs().median():.0f}%, decode-bound rows (TPOT, ITL) within "
      f"{good[good['metric'] == 'tpot_p50_ms']['error_pct'].abs().max():.0f}%.")''',
]


LLM_ENDPOINTS = [
    """md:# LLM endpoints on SageMaker: instance types, scale to zero, asynchronous inference

Three questions about serving an LLM on SageMaker (SPEC 2.8, 2.9):

1. **Which GPU type, scheduler and concurrency target** serve Llama 2 7B at
   the lowest cost per million output tokens with p99 TTFT under 1 s and p99
   TPOT under 80 ms? (`recommend` on the token-level engine.)
2. **Always on, scale to zero, or asynchronous?** For sparse and for bursty
   traffic: cost against the share of requests served.
3. **The recommendation**, circled.

**Input**, produced from the repository root by

```sh
spotsim recommend experiments/llm-recommendation.toml
spotsim run experiments/deployment-options.toml
```

`results/llm-recommendation/recommendations.csv` holds one row per design
(status, the objective's mean and interval, each constraint's estimate and
verdict); `results/deployment-options/summary.csv` the metrics of each
(traffic, mode, autoscaling) point, with `no_capacity_failures`,
`queue_wait_p99_s` and `scale_from_zero` (docs/sagemaker-options.md).""",
    SETUP,
    """def read_result(name, file):
    path = ROOT / "results" / name / file
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run spotsim on experiments/{name}.toml first")
    return pd.read_csv(path)


rec = read_result("llm-recommendation", "recommendations.csv")
# The constraints are judged over all counted arrivals (docs/recommend.md):
# `_all_ms` is infinite where more than 1% of requests went unserved.
COST, TTFT, TPOT = "cost_per_million_output_tokens_usd.mean", "ttft_p99_all_ms.mean", "tpot_p99_all_ms.mean"
TYPE, SCHED, TARGET = "inference.instance", "inference.llm.scheduler", "inference.autoscaling.target"
rec[["rank", "status", TYPE, SCHED, TARGET, "replications", COST, TTFT, TPOT]].head(12)""",
    """fig, ax = plt.subplots(figsize=(9, 5.5))
ax.axvspan(rec[TTFT].min() / 2, 1000, color="tab:green", alpha=0.08, label="TTFT p99 <= 1 s")
markers = {"vllm": "o", "chunked": "s"}
colors = dict(zip(sorted(rec[TYPE].unique()), ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"]))
for (t, sch), d in rec.groupby([TYPE, SCHED]):
    ok = d[TPOT] <= 80
    ax.scatter(d[TTFT], d[COST], marker=markers.get(sch, "^"), color=colors[t], s=45,
               alpha=[1.0 if x else 0.35 for x in ok], label=f"{t}, {sch}")
lead = rec.sort_values("rank").iloc[0]
ax.scatter([lead[TTFT]], [lead[COST]], s=350, facecolors="none", edgecolors="tab:red", lw=2,
           label=f"recommended ({lead['status']})")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("TTFT p99 over all arrivals, mean over replications (ms, log; unserved designs off the scale)")
ax.set_ylabel("cost per million output tokens (USD, log)")
ax.set_title("Llama 2 7B: cost per million tokens against TTFT p99 per GPU type\\n(faded: TPOT p99 above 80 ms)")
ax.legend(fontsize=7, ncol=2, loc="upper left")
fig.tight_layout()
fig.savefig(FIG / "llm-cost-ttft.png")
plt.show()""",
    """dep = read_result("deployment-options", "summary.csv")
dep["traffic"] = dep["traffic.trace"].str.extract(r"([a-z-]+)\\.csv")[0]
dep["option"] = np.where(dep["inference.autoscaling"].str.contains("min = 0"), "to zero", "always on")
dep["option"] = dep["inference.mode"].map({"endpoint": "real-time", "async": "async"}) + ", " + dep["option"]
wide = dep.pivot_table(index=["traffic", "option"], columns="metric", values="mean")
wide["served_share"] = wide["served"] / wide["requests"]
wide[["requests", "served_share", "no_capacity_failures", "cost_usd", "queue_wait_p99_s", "scale_from_zero"]].round(3)""",
    """fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
style = {"real-time, always on": ("tab:blue", "o"), "real-time, to zero": ("tab:red", "v"),
         "async, always on": ("tab:green", "s"), "async, to zero": ("tab:purple", "D")}
for ax, (traffic, d) in zip(axes, wide.groupby(level="traffic")):
    for (_, option), row in d.iterrows():
        c, m = style[option]
        ax.scatter(row["cost_usd"], row["served_share"], color=c, marker=m, s=90, label=option)
        wait = row["queue_wait_p99_s"]
        if np.isfinite(wait):
            ax.annotate(f"p99 wait {wait / 60:.1f} min", (row["cost_usd"], row["served_share"]),
                        textcoords="offset points", xytext=(6, -12), fontsize=7)
    ax.set_title(f"{traffic} traffic")
    ax.set_xlabel("cost per day (USD)")
    ax.set_ylim(-0.05, 1.08)
axes[0].set_ylabel("share of requests served")
axes[0].legend(fontsize=8, loc="lower right")
fig.suptitle("Real-time with scale to zero against asynchronous against always on")
fig.tight_layout()
fig.savefig(FIG / "llm-deployment-options.png")
plt.show()""",
    """lead = rec.sort_values("rank").iloc[0]
print(f"Recommended ({lead['status']}): {lead[TYPE]}, {lead[SCHED]} scheduler, {lead[TARGET]} requests per copy: "
      f"${lead[COST]:.2f} per million output tokens, TTFT p99 {lead[TTFT]:.0f} ms, TPOT p99 {lead[TPOT]:.1f} ms.")
for traffic, d in wide.groupby(level="traffic"):
    full = d[d["served_share"] > 0.999]
    best = full["cost_usd"].idxmin()[1] if len(full) else "none"
    print(f"{traffic}: the cheapest option that serves every request is {best}.")""",
]

# --------------------------------------------------------------------------
LLM_TRAINING = [
    """md:# LLM pre-training at scale: GPUs, failures and the purchase option

**Question** (`experiments/llm-training-llama3-8b.toml`,
`experiments/llm-training-llama3-70b.toml`): Llama-3-8B on 1T tokens and
Llama-3-70B on 15T tokens on H100s (ml.p5.48xlarge). How do the cost and the
wall time move with the GPU count on spot with restarts, on on-demand with
node replacement, and with HyperPod-style auto-resume from a pool of spares,
and from which GPU count do failures and reclaims make more GPUs slower?

**Input**, produced from the repository root by

```sh
spotsim run experiments/llm-training-llama3-8b.toml
spotsim run experiments/llm-training-llama3-70b.toml
```

`[training.llm]` derives the compute time (6·N + attention FLOPs per token at
the H100's peak × the published MFU), the checkpoint (14 bytes per parameter),
its write and restore times over S3 (and, for 70B, a memory tier in the peers'
host memory), and hardware failures at Llama 3's per-GPU rate, one every
50,677 GPU-hours (docs/training-model.md, "LLM training at scale").""",
    SETUP,
    """GPUS, REC = "training.llm.gpus", "training.llm.recovery"
ORDER = ["spot-restart", "on-demand-restart", "auto-resume"]
runs = {"Llama-3-8B, 1T tokens": read("llm-training-llama3-8b", "summary"),
        "Llama-3-70B, 15T tokens": read("llm-training-llama3-70b", "summary")}


def table(summary, name, col="mean"):
    rows = metric(summary, name)
    return rows.pivot(index=GPUS, columns=REC, values=col)[ORDER].sort_index()


for title, summary in runs.items():
    print(title)
    print(pd.concat({m: table(summary, m).round(3) for m in
                     ["wall_time_h", "cost_usd", "failures", "interruptions", "effective_training_frac"]}, axis=1)
          .to_string())
    print()""",
    """fig, axes = plt.subplots(2, 2, figsize=(11, 8))
for col, (title, summary) in enumerate(runs.items()):
    for row, (name, label) in enumerate([("wall_time_h", "wall time (h)"), ("cost_usd", "cost (USD)")]):
        ax = axes[row, col]
        mean, lo, hi = (table(summary, name, c) for c in ["mean", "p05", "p95"])
        for rec in ORDER:
            ax.errorbar(mean.index, mean[rec], yerr=[mean[rec] - lo[rec], hi[rec] - mean[rec]],
                        marker="o", capsize=3, label=rec)
        if name == "wall_time_h":
            # Where more GPUs stop paying: the count past which the mean wall time rises.
            for rec in ORDER:
                w = mean[rec]
                turn = [g for g, nxt in zip(w.index[:-1], w.index[1:]) if w[nxt] > w[g]]
                if turn:
                    ax.annotate(f"{rec}: slower past {turn[0]:,} GPUs", (turn[0], w[turn[0]]),
                                xytext=(0.35, 0.85), textcoords="axes fraction",
                                arrowprops={"arrowstyle": "->"})
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(mean.index, [f"{g:,}" for g in mean.index])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("H100 GPUs")
        ax.set_ylabel(label + ", mean and p05-p95")
        ax.set_title(title)
        ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(FIG / "llm-training-scale.png")
plt.show()""",
    """md:**Reading.** For 8B on 1T tokens, failures hardly matter: the job's
GPU-hours, and so its expected failures (under one a run), do not change with
the count; spot saves about 70% and adds a few hours of capacity waits. For
70B on 15T tokens, on-demand and auto-resume keep scaling to 32,768 GPUs
(the job fails every 1.5 hours there, and auto-resume's warm spares save the
replacement's startup each time), while on spot every one of thousands of
nodes can be reclaimed: its effective training time falls to 14% and it is
slower at 32,768 GPUs than at 16,384. Spot stays the cheapest option at every
count; the question a deadline asks is how many GPUs it needs to be on time.""",
    """for title, summary in runs.items():
    eff = table(summary, "effective_training_frac")
    wall = table(summary, "wall_time_h")
    best = wall.idxmin()
    print(title + ": fastest GPU count per recovery:",
          ", ".join(f"{rec} {best[rec]:,} ({wall.loc[best[rec], rec]:.0f} h, effective {eff.loc[best[rec], rec]:.2f})"
                    for rec in ORDER))""",
]


CALIBRATE = [
    """md:# Calibration: step times fitted to benchmark files, judged on a held-out load

`spotsim calibrate` (docs/calibrate.md) fits the `[llm."TYPE"]` step-time table to the
files that `vllm bench serve --save-result --save-detailed` writes, replaying each run as
it was run, and predicts the run it held out (by default the heaviest load). The files
here are real: Llama-3.3-70B-Instruct at tensor parallel 8 on 8 × A100 40GB, ShareGPT,
200 requests at 1, 4 and 16 req/s and all at once (tests/data/bench/README.md).
`run-all.sh` writes `results/calibrate/backtest.csv` with

```
spotsim calibrate --profile llama-3-70b --instance ml.p4d.24xlarge \\
    --out results/calibrate/llama-3-70b-p4d.toml --backtest results/calibrate/backtest.csv \\
    tests/data/bench/vllm-llama-3.3-70b-tp8-a100-qps-*.json
```""",
    SETUP,
    """path = ROOT / "results" / "calibrate" / "backtest.csv"
if not path.exists():
    raise FileNotFoundError(f"{path} is missing: run notebooks/run-all.sh (or the command above) first")
bt = pd.read_csv(path).sort_values("requests_per_s")
bt["run"] = bt["file"].str.extract(r"qps-(\\w+)\\.json")[0].radd("qps ")
bt[["run", "load", "role", "requests_per_s", "ttft_p50_ms", "ttft_p50_ms_sim", "tpot_p50_ms", "tpot_p50_ms_sim"]]""",
    """md:Measured (solid) and simulated (dashed) latency against the load each run reached. Filled markers
are the runs the table was fitted to; the open marker is the held-out run, which the
fit never saw: its distance from the measured curve is the honest error.""",
    """fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for ax, (col, title) in zip(axes, [("ttft_p50_ms", "TTFT p50 (ms)"), ("ttft_p90_ms", "TTFT p90 (ms)"),
                                   ("tpot_p50_ms", "TPOT p50 (ms)")]):
    ax.plot(bt["requests_per_s"], bt[col], "-", color="C0", label="measured")
    ax.plot(bt["requests_per_s"], bt[col + "_sim"], "--", color="C1", label="simulated")
    for held, face in [(False, "C1"), (True, "none")]:
        d = bt[(bt["role"] == "held_out") == held]
        ax.scatter(d["requests_per_s"], d[col + "_sim"], s=60, edgecolors="C1", facecolors=face,
                   zorder=3, label="held out" if held else "fitted")
    ax.scatter(bt["requests_per_s"], bt[col], s=25, color="C0", zorder=3)
    ax.set_xlabel("achieved load (requests/s)")
    ax.set_title(title)
    if col.startswith("ttft"):
        ax.set_yscale("log")
axes[0].legend(fontsize=8)
fig.suptitle("Llama-3.3-70B TP8 on 8 × A100 40GB: measured vs calibrated spotsim")
fig.tight_layout()
fig.savefig(FIG / "calibrate-backtest.png")""",
    """for _, r in bt.iterrows():
    e = lambda c: 100 * (r[c + "_sim"] / r[c] - 1)
    print(f"{r['run']:>8} ({r['role']}): TTFT p50 {e('ttft_p50_ms'):+.0f}%, TTFT p90 {e('ttft_p90_ms'):+.0f}%, "
          f"TPOT p50 {e('tpot_p50_ms'):+.0f}%")""",
    """md:The Poisson runs' TPOTs, which set how many requests a replica decodes at once, are fitted
closely at 1 and 4 req/s. The burst of 200 prompts at once is not: the server's median
TTFT there (350 ms) would need prefill faster than the GPUs' peak under whole-prompt,
first-come first-served scheduling, so that server must have ordered or overlapped the
work otherwise (docs/calibrate.md). The verdict line of `calibrate` says *poor* for
these files, and a design on this table should not be trusted for bursts.""",
]

# --------------------------------------------------------------------------
COMPONENTS = [
    """md:# Two models: one shared endpoint or two endpoints?

**Question** (`experiments/two-models-one-endpoint.toml`): a chat model
(Llama-3-8B, 2 to 8 copies of one GPU) and a small model used in office
hours (Qwen2.5-1.5B, scaled to zero at night). Host both as inference
components of one ml.g5.12xlarge endpoint (4 A10G GPUs a instance, copies
packed by managed instance scaling), or each on an ml.g5.2xlarge endpoint of
its own (`inference.shared = false`)?

**Input**: `spotsim run experiments/two-models-one-endpoint.toml` (point 0
shared, point 1 two endpoints). The model is in
`docs/inference-components.md`; the columns in `docs/outputs.md`.""",
    SETUP,
    """summary = read("two-models-one-endpoint", "summary")
timeline = read("two-models-one-endpoint", "timeline")
names = {0: "shared ml.g5.12xlarge", 1: "two ml.g5.2xlarge endpoints"}
rows = ["cost_usd", "idle_cost_usd", "idle_gpu_hours", "instances_mean", "chat.cost_usd", "small.cost_usd",
        "chat.ttft_p99_ms", "small.ttft_p99_ms", "small.no_capacity_failures"]
table = pd.DataFrame({names[p]: [metric(summary, m).loc[p, "mean"] for m in rows] for p in names}, index=rows)
table.round(2)""",
    """price = {0: 7.09, 1: 1.515}   # USD per instance-hour, the catalog's
fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
for p, ls in [(0, "-"), (1, "--")]:
    t = timeline[timeline["point"] == p]
    h = t["t_s"] / 3600
    axes[0].step(h, t["chat.copies_in_service"], ls, where="post", color="C0", label=f"chat copies, {names[p]}")
    axes[0].step(h, t["small.copies_in_service"], ls, where="post", color="C1", label=f"small copies, {names[p]}")
    axes[1].step(h, t["instances_in_service"] + t["instances_pending"], ls, where="post", color="C2",
                 label=names[p])
    # The cost rate: instances alive (in service or starting) x the price.
    cost = (t["instances_in_service"] + t["instances_pending"]) * price[p]
    axes[2].step(h, cost.cumsum() / 60, ls, where="post", color="C3", label=names[p])
axes[0].set_ylabel("copies in service")
axes[1].set_ylabel("instances")
axes[2].set_ylabel("cost so far (USD)")
axes[2].set_xlabel("hour of the day (replication 0)")
for ax in axes:
    ax.legend(fontsize=8)
fig.suptitle("Copies, instances and cost through the day")
fig.tight_layout()
fig.savefig(FIG / "inference-components-day.png")""",
    """c = {p: metric(summary, "cost_usd").loc[p] for p in names}
idle = metric(summary, "idle_cost_usd").loc[0, "mean"]
best = min(names, key=lambda p: c[p]["mean"])
print(f"cheapest: {names[best]}")
for p in names:
    print(f"  {names[p]}: ${c[p]['mean']:.0f} a day (95% CI {c[p]['ci95_low']:.0f} to {c[p]['ci95_high']:.0f})")
print(f"the shared endpoint's GPUs that no copy reserves: ${idle:.0f} a day")""",
    """md:The shared endpoint pays a higher price per GPU-hour (ml.g5.12xlarge's $7.09
over 4 GPUs against ml.g5.2xlarge's $1.515) and holds GPUs that no copy
reserves: the chat model scales in copy by copy, and an instance is released
only once it holds no copy (SageMaker's `IDLE_RELEASE`), so the remaining
copies stay spread over more instances than they need. Its one advantage
here is the small model's wake: its copy starts on an instance with room in
a minute or two instead of waiting for a new instance.""",
]


def main():
    for name, cells in [("checkpoint-interval", CHECKPOINT), ("endpoint-autoscaling", ENDPOINT),
                        ("serverless-vs-endpoint", SERVERLESS), ("zones-and-real-spot", ZONES),
                        ("right-sizing", RIGHT_SIZING), ("recommend", RECOMMEND),
                        ("deadline-policies", DEADLINE), ("llm-serving", LLM),
                        ("llm-endpoints", LLM_ENDPOINTS), ("llm-training", LLM_TRAINING),
                        ("calibrate", CALIBRATE), ("inference-components", COMPONENTS)]:
        # `build_notebooks.py NAME ...` writes only those, keeping the others' outputs.
        if len(sys.argv) > 1 and name not in sys.argv[1:]:
            continue
        nbformat.write(nb(cells), HERE / f"{name}.ipynb")
        print("wrote", HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()
