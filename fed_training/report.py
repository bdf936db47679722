"""The training report: ``results.md`` (tables) and ``report.html`` (tables + plots, one offline file)."""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xrdata.errors import require

__all__ = ["format_tables", "write_report"]

_METHODS = ("federated", "federated_prior", "federated_personalized", "centralized", "centralized_personalized",
            "local", "zero_fill")


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _bytes(v: float | None) -> str:
    if v is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(v) < 1000:
            return f"{v:.1f} {unit}"
        v /= 1000
    return f"{v:.1f} TB"


def _untrained_classes(results: Mapping[str, Any], task: str, split: str) -> list[str]:
    """Classes of ``task`` that windows of ``split`` hold and no training window has."""
    labels = results.get("labels", {})
    train, test = labels.get("train", {}).get(task, {}), labels.get(split, {}).get(task, {})
    return [c for c, n in test.items() if n and not train.get(c)]


def _methods_on(results: Mapping[str, Any], split: str) -> list[str]:
    """The methods of :data:`_METHODS` the run scored on ``split``, in that order."""
    return [m for m in _METHODS if results["methods"].get(m, {}).get(split)]


def _task_table(results: Mapping[str, Any], split: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the per-task scores on ``split``, one column per method the run has for it."""
    methods = results["methods"]
    present = _methods_on(results, split)
    rows = []
    for t in results["tasks"]:
        row = [t]
        for m in present:
            metric = methods[m][split].get(t, {})
            flag = " *" if m != "local" and _untrained_classes(results, t, split) else ""
            row.append(_f(metric.get("macro_f1", metric.get("mae"))) + flag if metric.get("n") else "-")
        rows.append(row)
    rows.append(["mean macro-F1", *(_f(methods[m].get(f"{split}_mean_macro_f1")) for m in present)])
    return ["task", *present], rows


def format_tables(results: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables as (title, header, rows)."""
    tables = []
    legend = ("macro-F1; MAE for regression; federated_prior: the federated model with each user's own label "
              "prior added to its logits; *_personalized: the model's PEFT modules and heads fine-tuned on each "
              "user's own {own}; *: the split holds classes that no training window has, see Labelled windows")
    for split, title, own in (("future", "Task metrics on future weeks of training users", "training weeks"),
                              ("unseen", "Task metrics on unseen users", "adaptation sessions")):
        header, rows = _task_table(results, split)
        if len(header) > 1:
            tables.append((f"{title} ({legend.format(own=own)})", header, rows))
    labels = results.get("labels", {})
    if labels.get("train"):
        splits = [s for s in ("train", "future", "adapt", "unseen") if s in labels]
        rows = []
        for t, classes in labels["train"].items():
            for c in classes:
                flagged = [s for s in ("future", "unseen") if c in _untrained_classes(results, t, s)]
                rows.append([t, c, *(str(labels[s].get(t, {}).get(c, 0)) for s in splits),
                             f"in {' and '.join(flagged)}, never in training" if flagged else ""])
        tables.append(("Labelled windows per class (adapt: the unseen users' adaptation sessions)",
                       ["task", "class", *splits, "note"], rows))
    missing = results.get("missing_steps", {})
    if missing:
        splits = list(missing)
        mods = sorted({m for v in missing.values() for m in v})
        tables.append(("Window steps without samples (share, over the users whose device has the modality)",
                       ["modality", *splits], [[m, *(_f(missing[s].get(m)) for s in splits)] for m in mods]))
    xr = results.get("xr_metrics", {})
    p = results.get("personalization", {})
    comm = xr.get("communication", {})
    lat = xr.get("inference_latency", {})
    priv = xr.get("privacy", {})
    qoe = xr.get("qoe", {})
    cc = xr.get("cross_context", {})
    rows = [
        ["inference latency (CPU, batch 1)", f"{_f(lat.get('cpu_batch1', {}).get('median_ms'), 2)} ms/window"],
        ["inference latency (CPU, batch 32)", f"{_f(lat.get('cpu_batch32', {}).get('median_ms'), 3)} ms/window"],
    ]
    if "cuda_batch1" in lat:
        rows.append([f"inference latency ({lat.get('cuda_name')}, batch 1)",
                     f"{_f(lat['cuda_batch1']['median_ms'], 3)} ms/window"])
    rows += [
        ["personalization effectiveness",
         f"{_f(p.get('effectiveness'))} macro-F1 gain ({'+'.join(p.get('groups', []))}, {p.get('steps')} steps)"],
        ["personalization necessity rate", f"{_f(p.get('necessity_rate'))} of (user, task) pairs reach accuracy "
                                           f"{p.get('necessity_threshold')} without tuning"],
        ["cross-context generalization", f"future {_f(cc.get('future_mean_macro_f1'))} vs unseen users "
                                         f"{_f(cc.get('unseen_mean_macro_f1'))} mean macro-F1"],
        ["task continuity (forgetting)", f"{_f(p.get('continuity_drop'))} macro-F1 drop on earlier sessions"],
        ["communication", f"{_bytes(comm.get('bytes_up_per_client_round'))} up, "
                          f"{_bytes(comm.get('bytes_down_per_client_round'))} down per client-round; "
                          f"{_bytes(comm.get('bytes_per_round'))} per round"],
        ["model-inferred QoE", f"MAE {_f(qoe.get('mae_vs_likert'))} vs self-reports; Spearman vs latency "
                               f"{_f(qoe.get('spearman_vs_latency'))}, vs implicit signals "
                               f"{_f(qoe.get('spearman_vs_implicit_signals'))}"],
        ["privacy leakage", f"membership-inference AUC {_f(priv.get('membership_inference_auc'))}; "
                            f"DP epsilon {_f(priv.get('dp_epsilon'), 2)}"],
    ]
    cal = comm.get("calibration")
    if cal:
        rows.append(["head calibration round", f"{cal['clients']} clients, {_bytes(cal['bytes_up'] / cal['clients'])}"
                                               " of class statistics up per client"])
    act = xr.get("submodule_activation", {})
    if act.get("experts"):
        rows.append(["submodule activation", "; ".join(f"{t}: {v['active']} experts"
                                                        for t, v in act["experts"].items())])
    if act:
        rows.append(["encoders active per window", _f(act.get("encoders_used_per_window"), 2)])
    tables.append(("XR metrics", ["metric", "value"], rows))
    dev = xr.get("on_device", {})
    tables.append(("Per device profile (energy model: compute + Wi-Fi radio, see profiles.py)",
                   ["profile", "training s/round", "energy J/round", "radio J/round", "inference ms",
                    "battery %/round"],
                   [[k, _f(v["training_s_per_round"], 2), _f(v["energy_j_per_round"], 2),
                     _f(v["radio_energy_j_per_round"], 3), _f(v["inference_ms"], 2),
                     _f(v["battery_pct_per_round"], 4)] for k, v in dev.items()]))
    fp = xr.get("footprint_by_device", {})
    tables.append(("Model storage footprint per device", ["device", "params", "fp32 MB", "int8 MB", "personal MB"],
                   [[k, f"{int(v['params']):,}", _f(v["fp32_mb"], 2), _f(v["int8_mb"], 2),
                     _f(v.get("personal_fp32_mb"), 3)] for k, v in fp.items()]))
    rob = results.get("robustness", {})
    if rob:
        mods = sorted({m for r in rob.values() for m in r["single"]})
        tables.append(("Missing-modality robustness (mean macro-F1, one modality removed at test time)",
                       ["model", "none removed", *mods],
                       [[name, _f(r["full"])] + [_f(r["single"].get(m)) for m in mods] for name, r in rob.items()]))
    return tables


def _markdown(tables: Sequence[tuple[str, list[str], list[list[str]]]]) -> str:
    out = []
    for title, header, rows in tables:
        out.append(f"### {title}\n")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        out.extend("| " + " | ".join(r) + " |" for r in rows)
        out.append("")
    return "\n".join(out)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _plots(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    require("matplotlib", "train")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = []
    hist = results.get("history", {})
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
    for key, label in (("val_macro_f1", "federated (learned missing token)"),
                       ("zero_fill_val_macro_f1", "federated (zero-fill)")):
        pts = [(r, v) for r, v in hist.get(key, []) if v is not None]
        if pts:
            ax[0].plot(*zip(*pts, strict=True), marker="o", label=label)
    cen = results["methods"].get("centralized", {}).get("future_mean_macro_f1")
    if cen is not None:
        ax[0].axhline(cen, ls="--", c="k", label="centralized")
    ax[0].set(xlabel="round", ylabel="validation mean macro-F1", title="Training curve")
    if ax[0].get_legend_handles_labels()[0]:
        ax[0].legend(fontsize=7)
    loss = [(r, v) for r, v in hist.get("loss", []) if v is not None and not math.isnan(v)]
    if loss:
        ax[1].plot(*zip(*loss, strict=True))
    ax[1].set(xlabel="round", ylabel="mean local loss", title="Local training loss")
    plots.append(("Training curves", _svg(fig)))

    rob = results.get("robustness", {})
    if rob:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for name, r in rob.items():
            ax.plot([c["removed"] for c in r["curve"]], [c["macro_f1"] for c in r["curve"]], marker="o", label=name)
        ax.set(xlabel="modalities removed at test time", ylabel="mean macro-F1", title="Missing-modality robustness")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        plots.append(("Robustness curve", _svg(fig)))

    tasks = [t for t in results["tasks"] if any("macro_f1" in m.get("unseen", {}).get(t, {})
                                                for m in results["methods"].values())]  # not regression
    present = _methods_on(results, "unseen")
    fig, ax = plt.subplots(figsize=(10, 3.2))
    width = 0.8 / max(1, len(present))
    for i, m in enumerate(present):
        vals = [results["methods"][m]["unseen"].get(t, {}).get("macro_f1", float("nan")) for t in tasks]
        ax.bar([k + i * width for k in range(len(tasks))], vals, width, label=m)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(tasks))], tasks, rotation=20, fontsize=7)
    ax.set(ylabel="macro-F1 on unseen users", title="Per task and method")
    if present:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    plots.append(("Per-task comparison", _svg(fig)))
    return plots


def _scope(results: Mapping[str, Any]) -> str:
    """What the numbers rest on: the store, the users per split and the windows per split."""
    users = results.get("users") or {}
    windows = results.get("windows") or {}
    parts = [f"store: {results.get('store')}"]
    if users:
        parts.append(f"users: {len(users.get('train', []))} training, {len(users.get('held_out', []))} held out "
                     "(the unseen users)")
    if windows:
        parts.append("windows: " + ", ".join(f"{k} {v}" for k, v in windows.items()))
    return "; ".join(parts)


def write_report(results: Mapping[str, Any], folder: str | Path) -> Path:
    """Write ``results.md`` and ``report.html`` into ``folder``; returns the HTML path."""
    folder = Path(folder)
    tables = format_tables(results)
    (folder / "results.md").write_text(_markdown(tables))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>xrdata training report</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#eee}</style></head><body>",
        "<h1>xrdata training report</h1>",
        f"<p>{html.escape(_scope(results))}</p>",
    ]
    for title, svg in _plots(results):
        parts.append(f"<h2>{html.escape(title)}</h2><div class='plot'>{svg}</div>")
    for title, header, rows in tables:
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>"
                     + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
        parts.extend("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        parts.append("</table>")
    parts.append("</body></html>")
    path = folder / "report.html"
    path.write_text("\n".join(parts))
    return path
