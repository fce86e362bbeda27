"""Seed 002's experiments: the clustering anatomy of self-supervised learning (digits default).

``sslscope study clustering --out runs/clustering`` trains, as ordinary run directories under
``OUT/runs/``, ``<method>-seed<s>``: the SSL run (VICReg and the small CNN unless told
otherwise) measuring at each of its evaluation points every label level (sample, class,
superclass, random targets), every backbone tap and MINE's I(X; h)
(:mod:`sslscope.anatomy`). It also trains the same backbone supervised, with and without the
augmentation, and measures its clustering (``OUT/supervised/<name>.json``). It writes
``OUT/report.html`` (the run's clustering figures, the supervised comparison and the claims),
``OUT/summary.md`` and ``OUT/summary.json`` with the claims list: the paper's findings 1–9
(methods.md §3) next to what the runs measured. Rerunning skips finished runs and finished
supervised baselines.

Reference: Ben-Shaul, Shwartz-Ziv, Galanti, Dekel & LeCun, "Reverse Engineering Self-Supervised
Learning", NeurIPS 2023, arXiv:2305.15614; seed 002.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sslscope import config as config_lib
from sslscope.config import Config
from sslscope.data import ImageData, load_dataset
from sslscope.data.download import DEFAULT_DATA_DIR
from sslscope.data.hierarchy import SUPERCLASSES
from sslscope.evaluate.collapse import collapse_metrics
from sslscope.evaluate.suite import extract_features
from sslscope.files import atomic_write_json, read_json_object
from sslscope.models import check_backbone
from sslscope.parts import resolve_device
from sslscope.runs import environment
from sslscope.studies import Study
from sslscope.studies.claims import write_summary
from sslscope.studies.options import add_common, add_jobs, parse_seeds, positive
from sslscope.studies.runner import Job, run_jobs
from sslscope.supervised import train_classifier

# The supervised baseline: 600 AdamW steps of 128 (57 epochs of the digits) at lr 1e-3, enough
# for the network without augmentation to fit every training image.
SUPERVISED = {"steps": 600, "batch_size": 128, "lr": 1e-3}


def ssl_config(method: str, backbone: str, *, full: bool, seed: int, device: str,
               dataset: str = "digits", data_dir: str = DEFAULT_DATA_DIR) -> Config:
    """The SSL run: 1,000 steps (3,000 full) of batch 256, every level, tap and MINE.

    On the digits the views are the digits recipe; on any other data set SimCLR's (the
    paper's protocol).

    The sample level is 100 images × 20 / 5 views (the paper's 500 × 100 / 20 with ``full``);
    MINE averages the paper's 5 seeds. The evaluation points are log-spaced,
    so the early phase the paper's findings 2 and 3 are about is sampled densely.
    """
    return config_lib.replace(
        Config(), method=method, backbone=backbone, dataset=dataset, data_dir=data_dir,
        augment="digits" if dataset == "digits" else "simclr", steps=3000 if full else 1000,
        eval_points=16 if full else 10, taps="all",
        levels="all" if dataset in SUPERCLASSES else "sample,class,random",
        mine_seeds=5, random_targets=5 if full else 4, instruments="",
        sample_images=500 if full else 100, sample_train_views=100 if full else 20,
        sample_test_views=20 if full else 5, seed=seed, device=device)


def supervised_baseline(data: ImageData, cfg: Config, augment: bool, path: Path,
                        log: Any = print) -> dict[str, Any]:
    """Train (or read back) the supervised network of the run ``cfg`` and measure its h.

    Returns (and saves atomically at ``path``) the settings, the classifier's own train/test
    accuracy and the class-level clustering measures of h
    (:func:`sslscope.evaluate.collapse.collapse_metrics`).
    """
    settings = {"backbone": cfg.backbone, "augment": cfg.augment if augment else None,
                "seed": cfg.seed, **SUPERVISED}
    if path.is_file():
        saved = read_json_object(path)
        if saved.get("settings") == settings:
            log(f"{path.stem}: finished, skipped")
            return saved
    log(f"{path.stem}: training the supervised baseline")
    device = resolve_device(cfg.device)
    run = train_classifier(data, cfg.backbone, augment=settings["augment"], seed=cfg.seed,
                           device=device, **SUPERVISED)
    train, test = (extract_features(run.encoder, x, device=device)
                   for x in (data.train_x, data.test_x))
    train_y, test_y = data.train_y.to(device), data.test_y.to(device)
    result = {
        "settings": settings,
        "classifier_train_acc": float((train["z"].argmax(1) == train_y).float().mean()),
        "classifier_test_acc": float((test["z"].argmax(1) == test_y).float().mean()),
        **collapse_metrics(train["h"], train_y, test["h"], test_y),
    }
    atomic_write_json(path, result)
    return result


def run_study(out_dir: str | Path, *, method: str = "vicreg", backbone: str = "small_cnn",
              dataset: str = "digits", data_dir: str = DEFAULT_DATA_DIR, full: bool = False,
              seeds: list[int] | None = None, device: str = "auto", parallel: int = 1,
              log: Any = print) -> Path:
    """Train (or keep) the runs and baselines, then write the report and the summary.

    Returns:
        The path of ``OUT/summary.md``.
    """
    from sslscope.studies.clustering_claims import claims_and_results
    from sslscope.studies.clustering_report import results_markdown, write_report

    out_dir = Path(out_dir)
    seeds = seeds or [0]
    configs = {seed: ssl_config(method, backbone, full=full, seed=seed, device=device,
                                dataset=dataset, data_dir=data_dir) for seed in seeds}
    for cfg in configs.values():
        config_lib.validate(cfg)  # a bad --method or --backbone is one sentence, before training
    runs = run_jobs([Job(f"{method}-seed{seed}", cfg) for seed, cfg in configs.items()],
                    out_dir / "runs", parallel=parallel, log=log)
    data = load_dataset(configs[seeds[0]].dataset, configs[seeds[0]].data_dir)
    supervised = {
        seed: {kind: supervised_baseline(data, cfg, kind == "augmented",
                                         out_dir / "supervised" / f"{kind}-seed{seed}.json",
                                         log=log)
               for kind in ("augmented", "plain")}
        for seed, cfg in configs.items()}
    claims, results = claims_and_results(runs, supervised, method=method, seeds=seeds)
    command = (f"sslscope study clustering --out {out_dir} --method {method} --backbone "
               f"{backbone}" + (f" --dataset {dataset}" if dataset != "digits" else "")
               + (" --full" if full else "")
               + f" --seeds {','.join(map(str, seeds))}")
    write_report(out_dir, runs, supervised, claims, results, command=command)
    return write_summary(out_dir, study="clustering",
                         title=f"The clustering anatomy of SSL (seed 002) on {dataset}",
                         command=command, environment=environment(resolve_device(device)),
                         claims=claims, body=results_markdown(runs, supervised, method=method,
                                                              seeds=seeds))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, out="runs/clustering", seeds="0")
    parser.add_argument("--method", default="vicreg",
                        help="the SSL objective (default: %(default)s)")
    parser.add_argument("--backbone", default="small_cnn",
                        help="small_cnn or res_lh:L,H (the paper's RES-L-H; res_lh:10,250 is "
                        "its main model, slow on a CPU) (default: %(default)s)")
    parser.add_argument("--dataset", default="digits",
                        help="digits (bundled), or a data set with labels in --data-dir, e.g. "
                        "cifar100, the paper's, whose superclasses are the third level "
                        "(default: %(default)s)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help="where --dataset is stored (default: %(default)s)")
    parser.add_argument("--full", action="store_true",
                        help="the paper's sample level (500 images × 100 / 20 views), 3,000 "
                        "steps, 16 evaluation points, 5 random targets (slow on a CPU)")
    add_jobs(parser, default=1, what="seeds")


def _run(args: argparse.Namespace) -> Path:
    check_backbone(args.backbone)
    return run_study(args.out, method=args.method, backbone=args.backbone,
                     dataset=args.dataset, data_dir=args.data_dir, full=args.full,
                     seeds=parse_seeds(args.seeds), device=args.device,
                     parallel=positive("--jobs", args.jobs))


STUDY = Study(
    name="clustering",
    help="seed 002: sample- and class-level clustering over training, CDNV, layers, MINE",
    description="Train an SSL method (VICReg unless told otherwise) on the digits (or "
    "--dataset),\nmeasuring at each evaluation point NCC, linear accuracy and CDNV at the "
    "sample,\nclass, superclass and random-target levels, at every backbone tap, and MINE's "
    "I(X; h);\ntrain the same backbone supervised with and without augmentation; write\n"
    "OUT/report.html, OUT/summary.md and OUT/summary.json (the claims list of the paper's\n"
    "findings 1-9). Runs go to OUT/runs/; rerunning skips finished runs.",
    add_arguments=_add_arguments,
    run=_run,
)
