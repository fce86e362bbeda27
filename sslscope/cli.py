"""The ``sslscope`` command line: train, eval, report, compare, export, study.

Every config field becomes a ``--flag`` generated from :class:`sslscope.config.Config`, so the
help text is the field's own documentation and cannot drift from the code.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from sslscope import config as config_lib
from sslscope.errors import TrainingDiverged, UserError

EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130
# A fixed width keeps `--help` identical everywhere, so the README's copy can be checked.
_FORMATTER = functools.partial(argparse.RawDescriptionHelpFormatter, width=100)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _methods_epilog() -> str:
    from sslscope.methods import METHODS
    from sslscope.presets import PRESETS

    lines = ["methods (--method):"]
    lines += [f"  {name:<12} {spec.description}" for name, spec in METHODS.items()]
    lines += ["", "presets (--preset):"]
    for name, fn in PRESETS.items():
        lines.append(f"  {name:<12} {(fn.__doc__ or '').strip().splitlines()[0]}")
    lines += [
        "",
        "examples:",
        "  sslscope train --preset demo --run-dir runs/demo",
        "  sslscope train --method nt_xent --loss temperature=0.2 --steps 3000",
        "  sslscope train --config runs/demo/config.json --run-dir runs/again",
        "  sslscope train --resume runs/demo",
    ]
    return "\n".join(lines)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model, evaluate it and write its report",
        description="Train a self-supervised model, evaluate it (linear probe, kNN, nearest class\n"
        "centre and k-means on the backbone output h and the projector output z) and write\n"
        "RUN_DIR/report.html.",
        epilog=_methods_epilog(), formatter_class=_FORMATTER,
    )
    src = p.add_argument_group("where the config comes from (later ones override earlier)")
    src.add_argument("--preset", help="start from a named preset (listed below); default: demo")
    src.add_argument("--config", metavar="FILE", help="start from a saved config.json")
    src.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or interrupted run")
    run = p.add_argument_group("run directory")
    run.add_argument("--run-dir", metavar="DIR",
                     help="output directory (default: runs/<method>-<dataset>)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing run directory (only one with a config.json)")
    run.add_argument("--stop-at", type=int, metavar="STEP",
                     help="stop with a checkpoint after STEP steps; finish later with --resume")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    opts = p.add_argument_group("config options (defaults shown are the base config's)")
    base = config_lib.Config()
    for f in dataclasses.fields(config_lib.Config):
        if f.name == "loss_kwargs":
            opts.add_argument("--loss", action="append", metavar="KEY=VALUE", dest="loss_kwargs",
                              help="override a keyword argument of the loss, e.g. "
                              "--loss inv_weight=10 (repeatable)")
            continue
        default = getattr(base, f.name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        opts.add_argument(_flag(f.name), dest=f.name, metavar=f.name.split("_")[-1].upper(),
                          help=f"{f.metadata['help']} (default: {shown})")


def _parse_loss_kwargs(items: Sequence[str]) -> dict:
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--loss expects KEY=VALUE, got '{item}'")
        try:
            out[key.strip()] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = raw.strip()
    return out


def _train(args: argparse.Namespace) -> int:
    from sslscope.presets import PRESETS
    from sslscope.train import train

    if args.resume:
        if args.preset or args.config:
            raise UserError(
                "--resume takes the config from the run directory; drop --preset/--config"
            )
        cfg = _require_run(args.resume).load_config()
    elif args.config:
        cfg = config_lib.load(args.config)
    else:
        name = args.preset or "demo"
        if name not in PRESETS:
            raise UserError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
        cfg = PRESETS[name]()
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_lib.Config)
                 if f.name != "loss_kwargs" and getattr(args, f.name) is not None}
    if args.loss_kwargs:
        overrides["loss_kwargs"] = {**cfg.loss_kwargs, **_parse_loss_kwargs(args.loss_kwargs)}
    if args.resume and overrides:
        raise UserError("a resumed run keeps its config; start a new run to change options")
    cfg = config_lib.validate(config_lib.replace(cfg, **overrides))

    run_dir = Path(args.resume or args.run_dir or f"runs/{cfg.method}-{cfg.dataset}")
    if args.overwrite and run_dir.exists() and not args.resume:
        if any(run_dir.iterdir()) and not (run_dir / "config.json").is_file():
            raise UserError(f"refusing to overwrite {run_dir}: it is not a sslscope run directory")
        shutil.rmtree(run_dir)
    files = train(cfg, run_dir, resume=bool(args.resume), stop_at=args.stop_at,
                  progress=not args.no_progress)
    _print_summary(files.root)
    return 0


def _require_run(path: str):
    from sslscope.runs import RunFiles

    return RunFiles(Path(path)).require()


def _print_summary(run_dir: Path) -> None:
    import json

    evaluation = run_dir / "evaluation.json"
    if not evaluation.is_file():
        print(f"stopped; continue with: sslscope train --resume {run_dir}")
        return
    rows = json.loads(evaluation.read_text())["rows"]
    columns = {"linear": "linear", "knn": "kNN", "ncc": "NCC", "cluster": "k-means"}
    print(f"\n{'test accuracy':<28}" + "".join(f" {name:>8}" for name in columns.values()))
    for row in rows:
        values = [row.get(probe, {}).get("test_acc") for probe in columns]
        print(f"{row['name']:<28}" + "".join(
            f" {100 * v:7.2f}%" if v is not None else "        —" for v in values))
    print(f"\nreport: {run_dir / 'report.html'}")


def _eval(args: argparse.Namespace) -> int:
    from sslscope.train import evaluate_run

    _require_run(args.run_dir)
    evaluate_run(args.run_dir, device=args.device)
    _print_summary(Path(args.run_dir))
    return 0


def _export(args: argparse.Namespace) -> int:
    from sslscope.train import export_run

    _require_run(args.run_dir)
    out = export_run(args.run_dir)
    print(f"{out / 'encoder.safetensors'}\n{out / 'encoder.json'}")
    print(f"load with: from sslscope.export import load_encoder; "
          f"encoder = load_encoder('{out}')")
    return 0


def _report(args: argparse.Namespace) -> int:
    from sslscope.report import build_report

    _require_run(args.run_dir)
    print(build_report(args.run_dir))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from sslscope.report.compare import build_comparison

    for run_dir in args.run_dirs:
        _require_run(run_dir)
    print(build_comparison(args.run_dirs, args.out))
    return 0


def _study(args: argparse.Namespace) -> int:
    from sslscope.methods import METHODS
    from sslscope.studies import STUDIES

    methods = args.methods.split(",") if args.methods else None
    for name in methods or []:
        if name not in METHODS:
            raise UserError(f"unknown method '{name}'; choose from: {', '.join(METHODS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise UserError(f"--seeds expects comma-separated integers, got '{args.seeds}'") from None
    if args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    path = STUDIES[args.name](args.out, methods=methods, seeds=seeds, steps=args.steps,
                              device=args.device, keep_runs=args.keep_runs)
    print(path.read_text())
    return 0


MAX_ICON_N = 2048  # the kernels are dense n × n float64 matrices: 32 MB each at this size


def _icon_table(args: argparse.Namespace) -> int:
    from sslscope.icon.table import equivalence_rows, format_table

    if not 4 <= args.n <= MAX_ICON_N:
        raise UserError(f"--n must be between 4 and {MAX_ICON_N} samples, got {args.n}")
    rows = equivalence_rows(n=args.n, seed=args.seed)
    print(format_table(rows))
    worst = max(r["abs_diff"] for r in rows)
    print(f"\nlargest difference {worst:.1e} (tolerance 1e-6)")
    return 0 if worst < 1e-6 else 1


def build_parser() -> argparse.ArgumentParser:
    """The ``sslscope`` parser with its train, eval and report subcommands."""
    parser = argparse.ArgumentParser(
        prog="sslscope", formatter_class=_FORMATTER,
        description="Train joint-embedding self-supervised models and see how they learn.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    p = sub.add_parser("eval", help="re-evaluate a finished run from its checkpoint",
                       formatter_class=_FORMATTER,
                       description="Recompute the final evaluation of RUN_DIR (raw pixels, random "
                       "init, trained encoder) from its checkpoint, and rebuild its report.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", help="evaluate on this device instead of the run's own")
    p = sub.add_parser("report", help="rebuild RUN_DIR/report.html from the saved files",
                       formatter_class=_FORMATTER,
                       description="Rebuild the self-contained HTML report of RUN_DIR from its "
                       "config, metrics, evaluation and saved embeddings; no model is run.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p = sub.add_parser("compare", help="put several runs side by side in one HTML page",
                       formatter_class=_FORMATTER,
                       description="Write one self-contained HTML page comparing the runs: final "
                       "accuracy, seed and\nwall time per run, mean ± std over runs whose configs "
                       "differ only by seed,\nthe config keys that differ, probe-accuracy and loss "
                       "curves. Figures go to\nfigures/ next to the page.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run directories (each with a config.json), shown in this order")
    p.add_argument("--out", default="compare.html", metavar="FILE",
                   help="the page to write (default: %(default)s)")
    p = sub.add_parser("export", help="write the trained encoder as safetensors + JSON",
                       formatter_class=_FORMATTER,
                       description="Write RUN_DIR/export/encoder.safetensors (weights, input "
                       "normalisation included)\nand encoder.json (the architecture), loadable "
                       "without pickle:\n  from sslscope.export import load_encoder\n"
                       "  encoder = load_encoder('RUN_DIR/export')   # h, z = encoder(x)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p = sub.add_parser("study", help="run a study: several trainings, one summary table",
                       formatter_class=_FORMATTER,
                       description="methods: train every objective (or --methods) for each seed "
                       "at the same budget\nand write OUT/results.md with linear-probe, kNN, "
                       "NCC and k-means accuracy,\nmean ± std.")
    p.add_argument("name", choices=["methods"], help="which study")
    p.add_argument("--out", default="docs/results", help="output directory (default: %(default)s)")
    p.add_argument("--methods", help="comma-separated subset of the methods (default: all)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: %(default)s)")
    p.add_argument("--steps", type=int, default=500, help="steps per run (default: %(default)s)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    p.add_argument("--keep-runs", action="store_true", help="keep every run directory")
    p = sub.add_parser("icon-table", help="check that named methods are I-Con instances",
                       formatter_class=_FORMATTER,
                       description="Compute SimCLR, SupCon, CLIP, cross-entropy, label smoothing, "
                       "SNE and t-SNE\ntwo ways — as their own loss and as an I-Con KL between a "
                       "supervisory p and\na learned q — in float64 on seeded random inputs, and "
                       "print both values.\nExit status 1 if any pair differs by 1e-6 or more.")
    p.add_argument("--n", type=int, default=8,
                   help=f"samples per batch, 4 to {MAX_ICON_N} (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default: 0)")
    return parser


def help_texts() -> dict[str, str]:
    """``--help`` of the command and of each subcommand, as the README's CLI reference shows."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    texts = {"sslscope": parser.format_help()}
    texts.update({f"sslscope {name}": p.format_help() for name, p in subparsers.choices.items()})
    return texts


def cli_reference_markdown() -> str:
    """The README's CLI reference section body, generated from the parsers."""
    blocks = [f"### `{name} --help`\n\n```text\n{text.rstrip()}\n```" for name, text in
              help_texts().items()]
    return "\n\n".join(blocks)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sslscope`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"train": _train, "eval": _eval, "report": _report, "compare": _compare,
                "export": _export, "study": _study, "icon-table": _icon_table}
    try:
        return handlers[args.command](args)
    except UserError as e:
        print(f"sslscope: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingDiverged as e:
        print(f"sslscope: training stopped: {e}", file=sys.stderr)
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        print("\nsslscope: interrupted; a checkpoint was saved, continue with --resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
