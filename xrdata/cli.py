"""The ``xrdata`` command line. This module is the composition root: it may import every sub-package,
inside the subcommand that needs it, so ``import xrdata`` stays light."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from xrdata.errors import XRDataError
from xrdata.progress import progress_bar


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


def cmd_info(args: argparse.Namespace) -> int:
    from xrdata.catalog import recorded_hours
    from xrdata.store import open_store

    store = open_store(args.store, mode="r")
    cat = store.catalog()
    if args.user:
        cat = cat.filter(pl.col("user") == args.user)
    df = cat.collect()
    users = [args.user] if args.user else store.users()
    sessions = {u: store.sessions(u, include_incomplete=True) for u in users}
    incomplete = {u: [s for s in ss if not store.is_complete(u, s)] for u, ss in sessions.items()}
    per_modality = (
        df.group_by("modality")
        .agg(
            pl.col("stream").count().alias("streams"),
            pl.col("n_samples").sum().alias("samples"),
            pl.col("missing_frac").mean().alias("mean_missing_frac"),
        )
        .join(recorded_hours(df, ("modality",)), on="modality")
        .select("modality", "streams", "samples", "hours", "mean_missing_frac")
        .sort("modality")
    )
    summary: dict[str, Any] = {
        "store": str(args.store),
        "users": len(users),
        "sessions": sum(len(v) for v in sessions.values()),
        "hours": float(recorded_hours(df)["hours"][0]),
        "incomplete_sessions": {u: v for u, v in incomplete.items() if v},
        "modalities": per_modality.to_dicts(),
    }
    if args.json:
        _print_json(summary)
        return 0
    print(f"store {args.store}: {summary['users']} user(s), {summary['sessions']} session(s), "
          f"{summary['hours']:.2f} h")
    for u, v in summary["incomplete_sessions"].items():
        print(f"  incomplete (live or crashed) sessions of {u}: {', '.join(v)}")
    with pl.Config(tbl_rows=50, tbl_hide_dataframe_shape=True):
        print(per_modality)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from xrdata.store import open_store
    from xrdata.validation import validate

    store = open_store(args.store, mode="r")
    users = [args.user] if args.user else store.users()
    targets = [(u, s) for u in users for s in (args.session or store.sessions(u, include_incomplete=True))]
    problems: list[dict[str, Any]] = []
    for user, session in progress_bar(targets, desc="validate", unit="session", enabled=not args.json):
        rec = store.read(user, session)
        problems += [
            {"user": user, "session": session, "stream": v.stream, "field": v.field,
             "severity": v.severity, "message": v.message}
            for v in validate(rec)
        ]
    errors = sum(p["severity"] == "error" for p in problems)
    if args.json:
        _print_json({"sessions": len(targets), "errors": errors, "warnings": len(problems) - errors,
                     "violations": problems})
    else:
        for p in problems:
            print(f"{p['severity']}: {p['user']}/{p['session']}: {p['message']}")
        print(f"{len(targets)} session(s) checked: {errors} error(s), {len(problems) - errors} warning(s)")
    return 1 if errors else 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from xrdata.store import open_store

    store = open_store(args.store, mode="r+" if args.rebuild else "r")
    if args.rebuild:
        store.rebuild_catalog(progress=not args.json)
    lf = store.catalog()
    for flt in args.where or []:
        col, _, value = flt.partition("=")
        if col not in lf.collect_schema().names():
            raise XRDataError(f"--where {flt!r}: unknown column {col!r}")
        lf = lf.filter(pl.col(col).cast(pl.String) == value)
    df = lf.collect()
    if args.json:
        _print_json(df.to_dicts())
    else:
        cols = ["user", "session", "stream", "modality", "n_samples", "duration_s", "nominal_rate_hz",
                "effective_rate_hz", "missing_frac", "device", "complete"]
        with pl.Config(tbl_rows=args.limit, tbl_cols=-1, tbl_width_chars=160):
            print(df.select(cols))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from xrdata.loaders.ingest import ingest, is_bids_dataset
    from xrdata.store import open_store

    starts = {}
    for item in args.start or []:
        name, sep, seconds = item.rpartition("=")
        try:
            starts[name] = float(seconds)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise XRDataError(f"--start {item!r}: expected FILE=SECONDS, e.g. --start audio.wav=12.5")
    options: dict[str, Any] = {}
    for item in args.option or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise XRDataError(f"--option {item!r}: expected KEY=VALUE, e.g. --option rate_hz=30")
        try:
            options[key] = json.loads(raw)  # numbers, true/false, lists, objects
        except ValueError:
            options[key] = raw  # plain strings
    if args.mapping:
        options["mapping"] = args.mapping
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:  # before the store is opened (and created, when it is new)
        raise XRDataError(f"{missing[0]}: no such file or folder")
    if any(is_bids_dataset(p) for p in args.paths):
        return _ingest_bids(args, starts, options)
    if args.user is None:
        raise XRDataError("ingest: --user is required (only a BIDS dataset names its users: its subjects)")
    store = open_store(args.store, mode="a", durable=args.durable)
    bar = progress_bar(total=len(args.paths), desc="ingest", unit="file", enabled=not args.json)

    def advance(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update()

    try:
        result = ingest(args.paths, store, args.user, session=args.session, starts_s=starts, progress=advance,
                        **options)
    except XRDataError as exc:
        hint = _option_hint(str(exc))
        if not hint:
            raise
        raise XRDataError(f"{exc} ({hint})") from exc
    finally:
        bar.close()
    summary = {"user": result.user, "session": result.session, "streams": result.streams,
               "skipped": result.skipped}
    if args.json:
        _print_json(summary)
    else:
        for path, session in result.skipped.items():
            print(f"{path}: already ingested as {result.user}/{session}, skipped")
        if result.session:
            print(f"wrote {result.user}/{result.session}: {', '.join(result.streams) or 'no streams'}")
    return 0


#: Reader arguments that ``xrdata ingest`` sets with its own flags rather than ``--option``.
_INGEST_FLAGS = {"mapping": "--mapping FILE", "user_id": "--user USER", "session_id": "--session ID"}


def _option_hint(message: str) -> str:
    """How to give, on the ``xrdata ingest`` command line, the reader arguments an error message asks for
    ("pass rate_hz= ..." -> "on the command line: --option rate_hz=VALUE"); "" when it asks for none."""
    asked: dict[str, str] = {}
    for part in re.findall(r"\bpass ([^;]*)", message):
        for name, value in re.findall(r"(?<![\w|])([a-z_]+)=(\w*)", part):
            asked.setdefault(name, {"True": "true", "False": "false"}.get(value, value) or "VALUE")
    flags = [_INGEST_FLAGS.get(n, f"--option {n}={v}") for n, v in asked.items()]
    return "on the command line: " + ", ".join(flags) if flags else ""


#: ``--option`` keys of ``xrdata ingest DATASET``: BIDS labels selecting recordings.
_BIDS_SELECTORS = {"subject": "subject", "session": "bids_session", "task": "task", "run": "run"}


def _ingest_bids(args: argparse.Namespace, starts: dict[str, float], options: dict[str, Any]) -> int:
    """``xrdata ingest DATASET``: every recording of a BIDS dataset, one session each (see the help)."""
    from xrdata.loaders.bids import bids_recordings
    from xrdata.loaders.ingest import ingest_bids
    from xrdata.store import open_store

    if len(args.paths) > 1:
        raise XRDataError("ingest: a BIDS dataset is ingested on its own (one PATH); its recordings become one "
                          "session each")
    if starts or args.mapping:
        raise XRDataError("ingest: --start and --mapping do not apply to a BIDS dataset (its files place and "
                          "describe themselves)")
    unknown = sorted(set(options) - set(_BIDS_SELECTORS))
    if unknown:
        raise XRDataError(f"ingest: --option {', '.join(unknown)} does not apply to a BIDS dataset; it takes "
                          f"{', '.join(f'{k}=LABEL' for k in _BIDS_SELECTORS)} to select recordings")
    select = {_BIDS_SELECTORS[k]: str(v) for k, v in options.items()}
    root = args.paths[0]
    total = len(bids_recordings(root, **{("session" if k == "bids_session" else k): v for k, v in select.items()}))
    store = open_store(args.store, mode="a", durable=args.durable)
    bar = progress_bar(total=total, desc="ingest", unit="recording", enabled=not args.json)

    def advance(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update()

    try:
        results = ingest_bids(root, store, args.user, session=args.session, progress=advance, **select)
    finally:
        bar.close()
    if args.json:
        _print_json([{"recording": r.recording, "user": r.user, "session": r.session, "streams": r.streams,
                      "skipped": r.skipped} for r in results])
        return 0
    for r in results:
        for label, session in r.skipped.items():
            print(f"{label}: already ingested as {r.user}/{session}, skipped")
        if r.session:
            print(f"{r.recording}: wrote {r.user}/{r.session}: {', '.join(r.streams) or 'no streams'}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from xrdata.loaders.lsl import record
    from xrdata.store import open_store

    selectors = [s.strip() for item in args.streams or [] for s in item.split(",") if s.strip()] or None
    mapping = None
    if args.mapping:
        try:
            mapping = json.loads(Path(args.mapping).read_text())
        except (OSError, ValueError) as exc:
            raise XRDataError(f"--mapping {args.mapping}: cannot read it as JSON: {exc}") from exc

    def status(elapsed_s: float, samples: dict[str, int]) -> None:
        if not args.json:
            counts = ", ".join(f"{k} {v}" for k, v in samples.items())
            print(f"\r{elapsed_s:7.1f} s  {counts}", end="", file=sys.stderr, flush=True)

    result = record(
        open_store(args.store, mode="a", durable=args.durable), args.user, session=args.session, streams=selectors,
        duration_s=args.duration, flush_interval_s=args.flush_interval, resolve_timeout_s=args.resolve_timeout,
        mapping=mapping, progress=status,
    )
    if not args.json:
        print(file=sys.stderr)
    if args.json:
        _print_json(dataclasses.asdict(result))
    else:
        counts = ", ".join(f"{k}: {v}" for k, v in result.samples.items())
        print(f"recorded {result.user}/{result.session} ({result.stopped_by}): {counts}")
    return 0


def cmd_export_bids(args: argparse.Namespace) -> int:
    from xrdata.loaders.bids import export_bids
    from xrdata.store import open_store

    result = export_bids(open_store(args.store, mode="r"), args.out, users=args.user, overwrite=args.overwrite)
    if args.json:
        _print_json(dataclasses.asdict(result))
    else:
        for user, session, stream, reason in result.skipped:
            print(f"skipped {user}/{session}/{stream}: {reason}")
        print(f"wrote {len(result.files)} files of a BIDS dataset to {result.root}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from xrdata.synth import config_from_preset, generate

    config = config_from_preset(args.preset, users=args.users, weeks=args.weeks, seed=args.seed)
    result = generate(config, args.store, workers=args.workers, progress=not args.json,
                      if_exists=args.if_exists, engine=args.engine)
    if args.json:
        _print_json(dataclasses.asdict(result))
    else:
        print(f"wrote {result.sessions} sessions ({result.seconds / 3600:.2f} h, {result.streams} streams) of "
              f"{len(result.users)} users to {result.store} in {result.wall_s:.1f} s")
        print(f"ground truth: {result.ground_truth}")
        if result.missing_generators:
            print(f"not generated (module missing): {', '.join(result.missing_generators)}")
    if args.report is not None:
        from xrdata.synth.report import write_report

        path = write_report(result.store, args.report or None, progress=not args.json)
        if not args.json:
            print(f"realism report: {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from xrdata.synth.report import compute_statistics, write_report

    rows = compute_statistics(args.store, max_sessions=args.max_sessions, captures=not args.no_captures,
                              regenerate=not args.no_captures)
    path = write_report(args.store, args.out, max_sessions=args.max_sessions, progress=not args.json,
                        statistics=rows)
    if args.json:
        _print_json({"report": str(path), "statistics": [r.as_dict() for r in rows]})
    else:
        print(f"realism report: {path}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from xrdata.quickstart import run

    summary = run(Path(args.out), users=args.users, weeks=args.weeks, seed=args.seed, workers=args.workers,
                  rounds=args.rounds, quiet=args.json)
    if args.json:
        _print_json(summary)
    return 0


def _train_config(args: argparse.Namespace) -> Any:
    from xrdata.fed_training.config import config_from_preset, load_config

    if args.config and args.preset:
        raise XRDataError("give --preset or --config, not both")
    cfg = load_config(args.config) if args.config else config_from_preset(args.preset or "quickstart")
    overrides: dict[str, Any] = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise XRDataError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. fed.rounds=10")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        node = overrides
        *path, last = key.split(".")
        for part in path:
            node = node.setdefault(part, {})
        node[last] = parsed
    if overrides:
        from xrdata.fed_training.config import override

        cfg = override(cfg, overrides)
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from xrdata.fed_training.train import train

    cfg = _train_config(args)
    results = train(args.store, cfg, args.out, workers=args.workers or 1, progress=not args.json,
                    resume=args.resume, evaluate=not args.no_eval, engine=args.engine)
    _print_results(results, args)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from xrdata.fed_training.evaluate import evaluate_run

    results = evaluate_run(args.run, args.store, workers=args.workers or 1, progress=not args.json)
    _print_results(results, args)
    return 0


def _print_results(results: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        _print_json(results)
        return
    if "methods" not in results:
        print(f"trained: {results['run']} ({results['timing']['train_s']:.1f} s)")
        return
    from xrdata.fed_training.report import _markdown, format_tables

    print(_markdown(format_tables(results)))
    print(f"results: {Path(results['run']) / 'results.json'}; report: {Path(results['run']) / 'report.html'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xrdata", description="Multi-modal XR recordings in per-user stores.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="summarise a store: users, sessions, modalities")
    p.add_argument("store", help="store path or fsspec URL")
    p.add_argument("--user", help="only this user")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("validate", help="check every stored session against the modality schemas")
    p.add_argument("store", help="store path or fsspec URL")
    p.add_argument("--user", help="only this user")
    p.add_argument("--session", action="append", help="only this session (repeatable; needs --user)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("catalog", help="print the catalog (one row per user, session, stream)")
    p.add_argument("store", help="store path or fsspec URL")
    p.add_argument("--rebuild", action="store_true", help="recompute the catalog from the stored arrays")
    p.add_argument("--where", action="append", metavar="COL=VALUE", help="keep rows where COL equals VALUE")
    p.add_argument("--limit", type=int, default=40, help="rows shown in the table (default 40)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_catalog)

    p = sub.add_parser(
        "ingest", help="read recording files into a store (several files = one session; a BIDS dataset = one "
        "session per recording)",
        description="Read recording files into a store. Several files become one session on one clock. A BIDS "
        "dataset folder (with dataset_description.json) is ingested on its own, one session per recording "
        "(sub/ses/task/run): each subject becomes its own user (participants.tsv's xrdata_user_id column, else "
        "the sub label) unless --user puts them all under one user (then, with several subjects, session ids "
        "start with the subject label); --option subject=01 (session=, task=, run=) selects recordings. Files "
        "and recordings already ingested for the user (same SHA-256) are skipped.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="recording files or folders of one session, or one "
                   "BIDS dataset folder")
    p.add_argument("--store", required=True, help="store path or fsspec URL (created if missing)")
    p.add_argument("--user", help="user id ([A-Za-z0-9_-]{1,64}); required except for a BIDS dataset, whose "
                   "subjects are the users by default")
    p.add_argument("--session", help="session id (default: from the first file name; for a BIDS dataset: from "
                   "its ses/task/run labels; --session there needs --user and a single recording)")
    p.add_argument("--mapping", help="mapping file (or shipped mapping name) for tabular logs and XDF streams")
    p.add_argument("--start", action="append", metavar="FILE=SECONDS",
                   help="start of FILE on the session clock, for files without absolute time (repeatable)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="reader option for the readers that take it, e.g. rate_hz=30 or scale=5000; for a BIDS "
                   "dataset subject=, session=, task=, run= select recordings (repeatable)")
    p.add_argument("--durable", action="store_true", help="fsync every file of a session before its commit: "
                   "committed sessions survive a power loss (slower; local stores)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("record", help="record live LSL streams into a store (Ctrl-C stops and commits)")
    p.add_argument("--store", required=True, help="store path or fsspec URL (created if missing)")
    p.add_argument("--user", required=True, help="user id ([A-Za-z0-9_-]{1,64})")
    p.add_argument("--session", help="session id (default: from the start time)")
    p.add_argument("--streams", action="append", metavar="SELECTOR[,SELECTOR]",
                   help="LSL streams to record, e.g. type=EEG,type=Gaze or name=MyStream (default: all)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--flush-interval", type=float, default=2.0, help="seconds between flushes (default 2)")
    p.add_argument("--resolve-timeout", type=float, default=5.0, help="seconds to look for streams (default 5)")
    p.add_argument("--mapping", help="JSON mapping of stream names/types to modalities and channels")
    p.add_argument("--durable", action="store_true", help="fsync each flush's samples before the flush is "
                   "recorded: everything up to the last flush survives a power loss (local stores)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("export-bids", help="export a store's users and sessions to a BIDS dataset")
    p.add_argument("store", help="store path or fsspec URL")
    p.add_argument("out", help="output folder of the BIDS dataset")
    p.add_argument("--user", action="append", help="only this user (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_export_bids)

    p = sub.add_parser("synth", help="generate a synthetic multi-user XR cohort into a store")
    p.add_argument("--preset", default="quickstart",
                   help="quickstart | benchmark | benchmark_bursty | neuro | industrial (default quickstart)")
    p.add_argument("--users", type=int, help="number of users (default: the preset's)")
    p.add_argument("--weeks", type=float, help="study length in weeks (default: the preset's)")
    p.add_argument("--seed", type=int, help="random seed (default: the preset's)")
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    p.add_argument("--workers", type=int, help="worker processes (default: one per CPU core)")
    p.add_argument("--if-exists", default="error", choices=["error", "skip", "overwrite"],
                   help="what to do with sessions already in the store (default: error)")
    p.add_argument("--engine", default="processes", choices=["processes", "dask"], help="parallel engine")
    p.add_argument("--report", nargs="?", const="", metavar="PATH",
                   help="also write the HTML realism report (default PATH: <store>/report.html)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("report", help="write the HTML realism report of a store (REALISM.md statistics, plots)")
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    p.add_argument("--out", help="output HTML file (default <store>/report.html for a local store)")
    p.add_argument("--max-sessions", type=int, default=12,
                   help="sessions sampled per stream for the signal statistics (default 12)")
    p.add_argument("--no-captures", action="store_true",
                   help="skip the simulated calibration captures and the regeneration check (synthetic stores)")
    p.add_argument("--json", action="store_true", help="machine-readable output (the statistics as JSON)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("quickstart", help="synthesize a small cohort, train, evaluate, write a report")
    p.add_argument("--out", default="xrdata-quickstart", help="output folder (default ./xrdata-quickstart)")
    p.add_argument("--users", type=int, help="number of users (default: the quickstart preset's)")
    p.add_argument("--weeks", type=float, help="study length in weeks (default: the preset's)")
    p.add_argument("--seed", type=int, help="random seed (default: the preset's)")
    p.add_argument("--workers", type=int, help="worker processes (default: one per CPU core)")
    p.add_argument("--rounds", type=int, help="federated rounds (default: the quickstart train preset's)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_quickstart)

    p = sub.add_parser("train", help="federated training on a store's users, with baselines and evaluation")
    p.add_argument("--store", required=True, help="store path or URL (every user is a client)")
    p.add_argument("--out", default="xrdata-run", help="run folder (default ./xrdata-run)")
    p.add_argument("--preset", help="quickstart | benchmark (default quickstart)")
    p.add_argument("--config", help="JSON config file: {\"preset\": ..., \"fed\": {...}, \"model\": {...}}")
    p.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                   help="override one field, e.g. fed.rounds=10 or model.n_experts=4 (repeatable)")
    p.add_argument("--workers", type=int, help="processes loading the clients' windows (default 1)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    p.add_argument("--no-eval", action="store_true", help="train only; run `xrdata evaluate` later")
    p.add_argument("--engine", default="inprocess", choices=["inprocess", "flower"],
                   help="federated engine: in-process (default) or Flower's simulation (needs flwr[simulation])")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a run folder's models: task metrics, robustness, XR metrics")
    p.add_argument("--run", required=True, help="run folder written by `xrdata train`")
    p.add_argument("--store", required=True, help="store the run was trained on")
    p.add_argument("--workers", type=int, help="processes loading the clients' windows (default 1)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_evaluate)
    return parser


def _version() -> str:
    from xrdata import __version__

    return f"xrdata {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xrdata`` command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if getattr(args, "session", None) and not args.user:
        print("xrdata: error: --session needs --user", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except XRDataError as exc:
        print(f"xrdata: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
