"""Issue-5 acceptance table from two ``xrdata train`` run folders on the synthesizer's benchmark cohorts.

Run (the benchmark run trains the federated model, centralized and local-only, about 22 minutes on 2 CPU
cores with the bursty run beside it; the bursty run the federated and zero-fill models, about 18 minutes)::

    xrdata synth --preset benchmark --store bench --workers 2
    xrdata synth --preset benchmark_bursty --store bursty --workers 2
    xrdata train --store bench --preset benchmark --out run-bench --set 'baselines=["centralized","local"]'
    xrdata train --store bursty --preset benchmark --out run-bursty --set 'baselines=["zero_fill"]'
    python benchmarks/fl_acceptance.py run-bench run-bursty

Other seeds of the federated runs on the same two stores (about 10-14 minutes each, two side by side) make the dropout
loss a mean over seeds, which one run per cohort cannot settle near a 3-point target; a seed's benchmark run
that also trains centralized (``baselines=["centralized"]``) joins a table of federated / centralized on the
mean over seeds::

    xrdata train --store bench --preset benchmark --out bench-s1 --set 'baselines=[]' --set fed.seed=1
    xrdata train --store bursty --preset benchmark --out bursty-s1 --set 'baselines=[]' --set fed.seed=1
    python benchmarks/fl_acceptance.py run-bench run-bursty --seed bench-s1 bursty-s1

``--cross BENCH_STORE BURSTY_STORE`` also evaluates every federated (and zero-fill) model of those runs on the
future and unseen windows of both stores (about 10 minutes: the two stores' window caches are loaded), which
separates what training on dropout costs (a model of the bursty cohort on windows without dropout) from what the
missing inputs cost at test time (one model on windows with and without dropout)::

    python benchmarks/fl_acceptance.py run-bench run-bursty --seed bench-s1 bursty-s1 --cross bench bursty

Prints, per task on future weeks, federated / centralized macro-F1 (target >= 0.9) for the global federated model,
with each client's own label prior added to its logits (``federated_prior``: the prior from the user's training
windows on future weeks, from its adaptation sessions on unseen users), and with its PEFT modules and heads
fine-tuned on each client's own windows (``federated_personalized``; also against the centralized model
fine-tuned the same way); on unseen users the same three against local-only trained on the adaptation sessions;
and the macro-F1 lost to 30 % bursty dropout by the learned-missing-token model and by zero-fill (target
<= 3 points for the learned token), on the mean and per task; with other seeds, also scored as the mean over
users of each user's own macro-F1, and per task as the mean over seeds; and the share of window steps without
samples per split.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

from _common import md_table  # benchmarks/_common.py

#: The federated model as reported, with each client's own label prior added to its logits, and with its PEFT
#: modules and heads fine-tuned on each client's own windows.
_VARIANTS = {"federated": "federated", "federated_prior": "federated + client prior",
             "federated_personalized": "federated + personalized"}
_NAMES = {**_VARIANTS, "centralized": "centralized", "centralized_personalized": "centralized + personalized"}
#: (federated variant, reference) pairs of the federated / centralized tables over seeds.
_COMPARISONS = [*((v, "centralized") for v in _VARIANTS), ("federated_personalized", "centralized_personalized")]


def _load(run: Path) -> dict[str, Any]:
    return json.loads((run / "results.json").read_text())


def _mean(values: Any) -> float | None:
    vals = [v for v in values if v == v]  # NaN: no user of the split has the modality
    return sum(vals) / len(vals) if vals else None


def _seed(run: Path) -> int:
    """The federated seed a run folder was trained with."""
    return int(json.loads((run / "config.json").read_text())["fed"]["seed"])


def _f1(res: dict[str, Any], method: str, split: str, task: str) -> float | None:
    """Pooled macro-F1 of one method on one split and task (None: not in the run, or no labelled window)."""
    m = res["methods"].get(method, {}).get(split, {}).get(task, {})
    return m.get("macro_f1") if m.get("n") else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", type=Path, help="run folder trained on the benchmark cohort (with baselines)")
    ap.add_argument("bursty", type=Path, help="run folder trained on benchmark_bursty (with zero_fill)")
    ap.add_argument("--seed", nargs=2, type=Path, action="append", default=[], metavar=("BENCH", "BURSTY"),
                    help="federated runs of another seed on the same two stores (repeatable)")
    ap.add_argument("--cross", nargs=2, type=Path, metavar=("BENCH_STORE", "BURSTY_STORE"),
                    help="evaluate every run's federated and zero-fill models on both stores' held-out windows")
    args = ap.parse_args()
    bench, bursty = _load(args.bench), _load(args.bursty)

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    future, unseen = [], []
    for t in bench["tasks"]:
        fed, prior, pers = (_f1(bench, m, "future", t) for m in _VARIANTS)
        cen, cen_pers = _f1(bench, "centralized", "future", t), _f1(bench, "centralized_personalized", "future", t)
        if fed is None and cen is None:  # a regression task (qoe): MAE, in results.md
            continue
        ratios = [f / c if f is not None and c else None
                  for f, c in ((fed, cen), (prior, cen), (pers, cen), (pers, cen_pers))]
        future.append([t, fmt(fed), fmt(prior), fmt(pers), fmt(cen), fmt(cen_pers), *map(fmt, ratios),
                       "/".join("-" if r is None else "yes" if r >= 0.9 else "no" for r in ratios)])
        unseen.append([t, *(fmt(_f1(bench, m, "unseen", t)) for m in (*_VARIANTS, "local"))])
    methods = bench["methods"]
    future.append(["**mean**", *(fmt(methods.get(m, {}).get("future_mean_macro_f1")) for m in
                                 (*_VARIANTS, "centralized", "centralized_personalized")), "", "", "", "", ""])
    unseen.append(["**mean**", *(fmt(methods.get(m, {}).get("unseen_mean_macro_f1")) for m in (*_VARIANTS, "local"))])
    print(md_table(["task (future weeks)", "federated", "federated + client prior", "federated + personalized",
                    "centralized", "centralized + personalized", "ratio", "ratio with prior", "ratio personalized",
                    "ratio, both personalized", ">= 0.9"], future))
    print()
    print(md_table(["task (unseen users)", "federated", "federated + client prior", "federated + personalized",
                    "local-only"], unseen))
    print()
    rows = []
    for method, name in _VARIANTS.items():
        for split in ("future", "unseen"):
            key = f"{split}_mean_macro_f1"
            clean = bench["methods"].get(method, {}).get(key)
            token = bursty["methods"].get(method, {}).get(key)
            if clean is None or token is None:
                continue
            zero = bursty["methods"].get("zero_fill", {}).get(key) if method == "federated" else None
            rows.append([split + name.removeprefix("federated").replace(" +", ","), fmt(clean), fmt(token),
                         f"{100 * (clean - token):+.1f}", fmt(zero),
                         "-" if zero is None else f"{100 * (clean - zero):+.1f}"])
            if method == "federated":
                local = bench["methods"].get("local", {}).get(key)
                rows.append([f"{split}: local-only, no dropout", fmt(local), "", "", "", ""])
    print(md_table(["mean macro-F1", "no dropout", "30 % bursty, learned token", "points lost",
                    "30 % bursty, zero-fill", "points lost"], rows))
    print()
    # the dropout the test windows carry: the held-out users are few, so their loss rates stray from 30 %
    missing = [(name, res["missing_steps"]) for name, res in (("no dropout", bench), ("bursty", bursty))
               if "missing_steps" in res]
    if missing:
        splits = ("train", "future", "unseen")
        print(md_table(["window steps without samples (mean over modalities)", *splits],
                       [[name, *(fmt(_mean(m.get(s, {}).values())) for s in splits)] for name, m in missing]))
        print()
    if args.seed:
        runs = [(args.bench, bench, bursty), *((b, _load(b), _load(u)) for b, u in args.seed)]
        # macro-F1 of the pooled windows (users with many sessions weigh more), and the mean of each user's own
        for (method, name), (key, pooling) in itertools.product(
                _VARIANTS.items(), (("mean_macro_f1", ""), ("user_mean_macro_f1", ", mean over users"))):
            if not all(method in r["methods"] for _, a, b in runs for r in (a, b)):
                continue
            rows, lost = [], []
            for run, clean_res, token_res in runs:
                means = [(clean_res["methods"][method][f"{split}_{key}"],
                          token_res["methods"][method][f"{split}_{key}"]) for split in ("future", "unseen")]
                lost.append([100 * (clean - token) for clean, token in means])
                rows.append([str(_seed(run)), *(f"{clean:.3f} / {token:.3f}" for clean, token in means),
                             *(f"{v:+.1f}" for v in lost[-1])])
            rows.append(["**mean**", "", "", *(f"{sum(v) / len(lost):+.1f}" for v in zip(*lost, strict=True))])
            print(md_table([f"seed ({name}{pooling})", "future: no dropout / bursty", "unseen: no dropout / bursty",
                            "points lost, future", "points lost, unseen"], rows))
            print()
        # federated over centralized on the mean of the seeds whose benchmark run trained centralized too:
        # one centralized run per task moves by up to 0.19 macro-F1 between seeds
        both = [(run, res) for run, res, _ in runs if "centralized" in res["methods"]]
        for method, ref in _COMPARISONS:
            name, ref_name = _NAMES[method], _NAMES[ref]
            if len(both) < 2 or not all(m in r["methods"] for _, r in both for m in (method, ref)):
                continue
            rows = []
            for t in bench["tasks"]:
                found = [(_f1(res, method, "future", t), _f1(res, ref, "future", t)) for _, res in both]
                pairs = [(f, c) for f, c in found if f is not None and c is not None]
                if len(pairs) < len(found):
                    continue
                fed = sum(f for f, _ in pairs) / len(pairs)
                cen = sum(c for _, c in pairs) / len(pairs)
                rows.append([t, *(f"{f:.3f} / {c:.3f}" for f, c in pairs), fmt(fed), fmt(cen), fmt(fed / cen),
                             "yes" if fed >= 0.9 * cen else "no"])
            print(md_table(["task", *(f"seed {_seed(run)}: {name} / {ref_name}" for run, _ in both),
                            f"{name} (mean)", f"{ref_name} (mean)", "ratio", ">= 0.9"], rows))
            print()
        # per task over the seeds: one run moves a task's loss by 10-20 points
        rows = []
        for t in bench["tasks"]:
            cells = [t]
            for split in ("future", "unseen"):
                scores = [(_f1(a, "federated", split, t), _f1(b, "federated", split, t)) for _, a, b in runs]
                drops = [100 * (c - k) for c, k in scores if c is not None and k is not None]
                if len(drops) < len(runs):
                    break
                cells.append(f"{sum(drops) / len(drops):+.1f} ({min(drops):+.1f} to {max(drops):+.1f})")
            if len(cells) == 3:
                rows.append(cells)
        print(md_table(["task", "points lost, future: mean (seeds)", "points lost, unseen: mean (seeds)"], rows))
        print()
    # per task: where the dropout loss comes from (a task whose label shows in one stream only loses that
    # stream's missing share, whatever fills the gap)
    rows = []
    for t in bench["tasks"]:
        cells = [t]
        for split in ("future", "unseen"):
            clean = _f1(bench, "federated", split, t)
            token, zero = _f1(bursty, "federated", split, t), _f1(bursty, "zero_fill", split, t)
            if clean is None or token is None:
                break
            lost_zero = "-" if zero is None else f"{100 * (clean - zero):+.1f}"
            cells += [fmt(clean), f"{100 * (clean - token):+.1f}", lost_zero]
        if len(cells) == 7:
            rows.append(cells)
    print(md_table(["task", "future: no dropout", "points lost, token", "points lost, zero-fill",
                    "unseen: no dropout", "points lost, token", "points lost, zero-fill"], rows))
    if args.cross:
        print()
        folders = [(args.bench, args.bursty), *((b, u) for b, u in args.seed)]
        print(md_table(["model (trained on, seed)", "future: without / with dropout", "points lost",
                        "unseen: without / with dropout", "points lost"], _cross(folders, *args.cross)))


def _cross(pairs: list[tuple[Path, Path]], clean_store: Path, bursty_store: Path) -> list[list[str]]:
    """Mean macro-F1 of each run's federated (and zero-fill) model on the held-out windows of both stores."""
    from xrdata.fed_training.data import concat
    from xrdata.fed_training.evaluate import mean_macro_f1, predict, task_metrics
    from xrdata.fed_training.train import load_cohort, load_model

    models = []
    for clean_run, bursty_run in pairs:
        for cohort, run in (("no dropout", clean_run), ("bursty", bursty_run)):
            for name in ("federated", "zero_fill"):
                if (run / f"{name}.safetensors").exists():
                    label = f"{cohort}, seed {_seed(run)}" + (", zero-fill" if name == "zero_fill" else "")
                    models.append((label, *load_model(run, name)))
    scores: dict[tuple[str, str, str], float] = {}
    for store_name, store in (("clean", clean_store), ("bursty", bursty_store)):
        cohort = load_cohort(store, models[0][2])
        for split in ("future", "unseen"):
            pooled = concat(list(getattr(cohort, split).values()))
            for label, model, cfg, tasks in models:
                metrics = task_metrics(predict(model, pooled, device=cfg.device), pooled, tasks)
                scores[label, store_name, split] = mean_macro_f1(metrics)
    rows = []
    for label, *_ in models:
        cells = [label]
        for split in ("future", "unseen"):
            clean, lossy = scores[label, "clean", split], scores[label, "bursty", split]
            cells += [f"{clean:.3f} / {lossy:.3f}", f"{100 * (clean - lossy):+.1f}"]
        rows.append(cells)
    return rows


if __name__ == "__main__":
    main()
