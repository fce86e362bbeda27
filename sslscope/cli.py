"""``sslscope``: train, eval, report, compare, export, study, sweep, icon-table and bench.

Every config field becomes a ``--flag`` generated from :class:`sslscope.config.Config`, so the
help text is the field's own documentation and cannot drift from the code.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from sslscope import config as config_lib
from sslscope.cli_options import add_config_options, command_line_loss_kwargs, given_options
from sslscope.errors import Interrupted, PeerLost, TrainingDiverged, UserError, shown
from sslscope.runs import RunFiles

EXIT_USAGE, EXIT_DIVERGED, EXIT_PEER_LOST = 2, 3, 1
# A fixed width keeps `--help` identical everywhere, so the README's copy can be checked.
_FORMATTER = functools.partial(argparse.RawDescriptionHelpFormatter, width=100)


def _methods_epilog(examples: bool = True) -> str:
    from sslscope.losses import METHODS
    from sslscope.presets import PRESETS

    width = max(map(len, [*METHODS, *PRESETS]))
    lines = ["methods (--method):"]
    lines += [f"  {name:<{width}}  {method.description}" for name, method in METHODS.items()]
    lines += ["", "presets (--preset):"]
    for name, fn in PRESETS.items():
        lines.append(f"  {name:<{width}}  {(fn.__doc__ or '').strip().splitlines()[0]}")
    if not examples:
        return "\n".join(lines)
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
    src = _add_config_source(p)
    src.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or interrupted run")
    run = p.add_argument_group("run directory")
    run.add_argument("--run-dir", metavar="DIR",
                     help="output directory (default: runs/<method>-<dataset>)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing run directory (only one with a config.json)")
    run.add_argument("--stop-at", type=int, metavar="STEP",
                     help="stop with a checkpoint after STEP steps; finish later with --resume")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_config_options(p)


def _add_config_source(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``--preset`` and ``--config``: the config that the options then change (train, sweep)."""
    src = p.add_argument_group("where the config comes from (later ones override earlier)")
    src.add_argument("--preset", help="start from a named preset (listed below); default: demo")
    src.add_argument("--config", metavar="FILE", help="start from a saved config.json")
    return src


def _train(args: argparse.Namespace) -> int:
    from sslscope.distributed import launched
    from sslscope.train import train

    if args.resume:
        if args.preset or args.config:
            raise UserError(
                "--resume takes the config from the run directory; drop --preset/--config"
            )
        cfg = _require_run(args.resume).load_config()
    else:
        cfg = _starting_config(args)
    overrides = given_options(args, cfg)
    if args.resume and overrides:
        raise UserError("a resumed run keeps its config; start a new run to change options")
    cfg = config_lib.validate(config_lib.replace(cfg, **overrides))

    run_dir = Path(args.resume or args.run_dir or f"runs/{cfg.method}-{cfg.dataset}")
    main_rank = launched().main  # under torchrun only rank 0 touches the run directory
    if args.overwrite and run_dir.exists() and not args.resume and main_rank:
        if any(run_dir.iterdir()) and not RunFiles(run_dir).config.is_file():
            raise UserError(f"refusing to overwrite {run_dir}: it is not a sslscope run directory")
        shutil.rmtree(run_dir)
    files = train(cfg, run_dir, resume=bool(args.resume), stop_at=args.stop_at,
                  progress=not args.no_progress)
    if main_rank:
        _report_and_summary(files)
    return 0


def _starting_config(args: argparse.Namespace) -> config_lib.Config:
    """The config of ``--config FILE``, else of ``--preset NAME`` (default: demo)."""
    from sslscope.presets import PRESETS

    if args.config:
        return config_lib.load(args.config)
    name = args.preset or "demo"
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]()


def _require_run(path: str) -> RunFiles:
    return RunFiles(Path(path)).require()


def _report_and_summary(files: RunFiles) -> None:
    """Build the report of a finished run and print its final table; or say how to go on."""
    from sslscope.evaluate.suite import PROBES
    from sslscope.files import read_json_object
    from sslscope.report import build_report

    def report() -> None:
        try:
            build_report(files.root)
        except OSError as e:  # a full disk after training: the run itself is whole
            where = f" writing {shown(e.filename, 300)}" if e.filename else ""
            raise UserError(f"the run finished, but its report was not written ({e.strerror}"
                            f"{where}): make room, then run sslscope report "
                            f"{shown(files.root, 300)}") from None

    evaluation = read_json_object(files.evaluation)
    if evaluation is None:
        if (read_json_object(files.run_info) or {}).get("status") == "finished":
            report()  # finished without labels: no table, but a report
            print(f"report: {files.report}")
        else:
            print(f"stopped; continue with: sslscope train --resume {files.root}")
        return
    report()
    rows = evaluation["rows"]
    widths = [max(8, len(name)) for name in PROBES.values()]
    print(f"\n{'test accuracy':<28}" + "".join(
        f" {name:>{w}}" for name, w in zip(PROBES.values(), widths, strict=True)))
    for row in rows:
        values = [row.get(probe, {}).get("test_acc") for probe in PROBES]
        print(f"{row['name']:<28}" + "".join(
            f" {100 * v:{w - 1}.2f}%" if v is not None else " " + "—".rjust(w)
            for v, w in zip(values, widths, strict=True)))
    print(f"\nreport: {files.report}")


def _eval(args: argparse.Namespace) -> int:
    from sslscope.operations import evaluate_run

    files = _require_run(args.run_dir)
    evaluate_run(files.root, device=args.device)
    _report_and_summary(files)
    return 0


def _export(args: argparse.Namespace) -> int:
    from sslscope.operations import export_run

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
    from sslscope.studies import STUDIES

    print(STUDIES[args.name].run(args).read_text())
    return 0


def _add_study(sub: argparse._SubParsersAction) -> None:
    from sslscope.studies import STUDIES

    p = sub.add_parser("study", help="run a study: several trainings, one summary",
                       formatter_class=_FORMATTER,
                       description="Run a study: its trainings are ordinary run directories, "
                       "its summary goes into --out\nand is printed at the end. "
                       "`sslscope study STUDY --help` lists a study's options.")
    studies = p.add_subparsers(dest="name", required=True, metavar="STUDY")
    for name, study in STUDIES.items():
        study.add_arguments(studies.add_parser(name, help=study.help, formatter_class=_FORMATTER,
                                               description=study.description))


def _sweep(args: argparse.Namespace) -> int:
    from sslscope.studies.options import parse_seeds
    from sslscope.studies.sweep import parse_grid, results_table, run_sweep

    cfg = _starting_config(args)
    given = given_options(args, cfg)  # set by plain options: no axis may set them again
    loss_keys = [f"loss.{key}" for key in command_line_loss_kwargs(args)]
    axes = parse_grid(args.grid or [], given=[*given, *loss_keys])
    if args.seeds and "seed" in given:
        raise UserError("--seed and --seeds both set the seed; drop one")
    seeds = parse_seeds(args.seeds) if args.seeds else None
    path = run_sweep(config_lib.replace(cfg, **given), axes, args.out, jobs=args.jobs,
                     seeds=seeds)
    print(results_table(json.loads(path.read_text(encoding="utf-8"))["rows"]))
    print(f"\n{path.with_suffix('.csv')}\n{path}\n{path.parent / 'compare.html'}")
    return 0


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    from sslscope.studies import sweep

    p = sub.add_parser("sweep", help=sweep.HELP, description=sweep.DESCRIPTION,
                       epilog=f"{sweep.GRID_HELP}\n{_methods_epilog(examples=False)}",
                       formatter_class=_FORMATTER)
    grid = p.add_argument_group("the grid")
    grid.add_argument("--grid", action="append", metavar="FIELD=VALUES",
                      help="one axis: a config field and its values (repeatable; syntax below)")
    grid.add_argument("--seeds", metavar="LIST",
                      help="comma-separated seeds, a last axis (default: the base config's seed)")
    grid.add_argument("--out", default="runs/sweep", metavar="DIR",
                      help="directory of the cells and results (default: %(default)s)")
    grid.add_argument("--jobs", type=int, default=1, metavar="N",
                      help="cells trained at once, cores/N threads each (default: %(default)s)")
    _add_config_source(p)
    add_config_options(p)


def _bench(args: argparse.Namespace) -> int:
    from sslscope.bench.runner import run_bench

    md, js = run_bench(args.out, threads=args.threads, repeats=args.repeats,
                       workers=args.workers, quick=args.quick, sections=args.sections)
    print(md.read_text(encoding="utf-8"))
    print(f"{md}\n{js}")
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
    """The parser: train, eval, report, compare, export, study, sweep, icon-table, bench."""
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
    p.add_argument("--out", default="runs/compare.html", metavar="FILE",
                   help="the page to write (default: %(default)s)")
    p = sub.add_parser("export", help="write the trained encoder as safetensors + JSON",
                       formatter_class=_FORMATTER,
                       description="Write RUN_DIR/export/encoder.safetensors (weights, input "
                       "normalisation included)\nand encoder.json (the architecture), loadable "
                       "without pickle:\n  from sslscope.export import load_encoder\n"
                       "  encoder = load_encoder('RUN_DIR/export')   # h, z = encoder(x)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    _add_study(sub)
    _add_sweep(sub)
    p = sub.add_parser("icon-table", help="check that named methods are I-Con instances",
                       formatter_class=_FORMATTER,
                       description="Compute SimCLR, SupCon, CLIP, cross-entropy, label smoothing, "
                       "SNE and t-SNE\ntwo ways — as their own loss and as an I-Con KL between a "
                       "supervisory p and\na learned q — in float64 on seeded random inputs, and "
                       "print both values.\nExit status 1 if any pair differs by 1e-6 or more.")
    p.add_argument("--n", type=int, default=8,
                   help=f"samples per batch, 4 to {MAX_ICON_N} (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default: 0)")
    from sslscope.bench import SECTIONS

    p = sub.add_parser("bench", help="time sslscope against baselines; write one results table",
                       formatter_class=_FORMATTER,
                       description="Time sslscope against baselines in one process and write "
                       "DIR/bench.md (and the same\nnumbers in DIR/bench.json): batched views "
                       "vs kornia and a per-sample PIL pipeline,\nthe training step vs a "
                       "hand-written loop, the share of evaluation and instruments\nin a "
                       "default run, the probes vs scikit-learn on 50,000 × 512 features, and "
                       "how the\ncosts scale; on a CUDA GPU, views/s and MFU of ResNet-18. "
                       "Every timing is a\nratio to a baseline measured in the same run.\n"
                       "About 15 minutes on 2 CPU cores; --quick takes seconds.")
    p.add_argument("--out", default="benchmarks", metavar="DIR",
                   help="directory of bench.md and bench.json (default: %(default)s)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch threads, also the limit of scikit-learn's and BLAS's (default: "
                   "all logical CPUs)")
    p.add_argument("--repeats", type=int, metavar="N",
                   help="timed repeats per comparison, the median is reported (default: 3; "
                   "1 with --quick)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="DataLoader workers of the per-sample pipelines (default: --threads)")
    p.add_argument("--sections", metavar="LIST",
                   help=f"comma-separated sections to run: {', '.join(SECTIONS)} (default: all); "
                   "an existing table keeps its other sections, each marked with its run")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, a few seconds in all (for tests; the numbers mean nothing)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sslscope`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:  # Ctrl-C while the options are read: nothing started yet
        print("\nsslscope: interrupted (SIGINT)", file=sys.stderr)
        return 128 + signal.SIGINT
    handlers = {"train": _train, "eval": _eval, "report": _report, "compare": _compare,
                "export": _export, "study": _study, "icon-table": _icon_table,
                "bench": _bench, "sweep": _sweep}
    # SIGTERM (a scheduler's notice, `kill`) unwinds like Ctrl-C instead of killing the process
    # on the spot, so run.json and temporary files are settled; training itself stops at the
    # next step boundary (sslscope.train.GracefulInterrupt).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupted) if main_thread else None
    try:
        return handlers[args.command](args)
    except UserError as e:
        print(f"sslscope: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingDiverged as e:
        print(f"sslscope: training stopped: {e}", file=sys.stderr)
        return EXIT_DIVERGED
    except PeerLost as e:
        print(f"sslscope: stopped: {e}", file=sys.stderr)
        return EXIT_PEER_LOST
    except OSError as e:  # a full disk, a read-only place, a name too long, a file in the way
        where = f": {shown(e.filename, 300)}" if e.filename else ""
        print(f"sslscope: error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        # 128 + the signal number, the shell's convention: 130 for Ctrl-C, 143 for SIGTERM.
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        print(f"\nsslscope: interrupted ({signal.Signals(signum).name})"
              + CONTINUE.get(args.command, ""), file=sys.stderr)
        return 128 + signum
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


#: How to carry on after an interrupt, by command (the others just start again).
CONTINUE = {"train": "; continue with sslscope train --resume RUN_DIR",
            "sweep": "; rerun the same command to continue: finished cells are kept and "
                     "interrupted ones resume",
            "study": "; rerun the same command to continue: finished runs are kept and "
                     "interrupted ones resume"}


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


if __name__ == "__main__":
    sys.exit(main())
