"""Command-line interface: ``eegcrp {prepare,train,explain,run,report,demo} CONFIG.yaml``.

Every command takes ``--out DIR`` (replaces the config's ``output_dir``) and repeatable
``--set KEY=VALUE`` overrides with dotted keys, so a study is one YAML file and a quick
variant (``--set training.repetitions=1``) needs no copy of it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml

from .config import ConfigError, StudyConfig, load_config
from .data.base import DataError
from .training import TrainingError

logger = logging.getLogger("eegcrp")

__all__ = ["demo_config", "main"]


def _common(parser: argparse.ArgumentParser, config_required: bool = True) -> None:
    if config_required:
        parser.add_argument("config", type=Path, help="study configuration (YAML)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (overrides the config's output_dir)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config value, dotted keys (repeatable), e.g. "
                             "--set training.repetitions=1")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbosity.add_argument("-q", "--quiet", action="store_true",
                           help="warnings only, no progress bars")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eegcrp",
        description="What did my EEG decoder learn? Data preparation, EEGNet leave-one-"
                    "subject-out training and concept relevance analysis.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("prepare", help="load + preprocess (cached); print a per-subject table")
    _common(p)
    p = sub.add_parser("train", help="leave-one-subject-out EEGNet training")
    _common(p)
    _overwrite(p)
    p = sub.add_parser("explain", help="concept relevance (CRP) of every trained fold")
    _common(p)
    _overwrite(p)
    p = sub.add_parser("run", help="run every stage, then write the report")
    _common(p)
    _overwrite(p)
    p = sub.add_parser("report", help="write report.html from the stages' results")
    _common(p)
    p = sub.add_parser("demo", help="run everything on simulated data (no download)")
    _common(p, config_required=False)
    _overwrite(p)
    return parser


def _overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace results of a different configuration in the output "
                             "folder (default: refuse; finished folds of the same "
                             "configuration are always reused)")


def demo_config(overrides: Sequence[str] = (), output_dir: Path | None = None) -> StudyConfig:
    """The embedded default study: simulated motor imagery, 10 subjects, 64 channels."""
    raw = yaml.safe_load(resources.files("eegcrp").joinpath("demo.yaml").read_text())
    return load_config(raw, overrides, output_dir=output_dir or raw.get("output_dir"))


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("eegcrp").setLevel(level)
    for noisy in ("matplotlib", "numba", "PIL", "distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``eegcrp`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    progress = not args.quiet
    try:
        if args.command == "demo":
            config = demo_config(args.overrides, args.out)
        else:
            config = load_config(args.config, args.overrides, output_dir=args.out)
        return _dispatch(args.command, config, progress, getattr(args, "overwrite", False))
    except (ConfigError, DataError, TrainingError) as exc:
        if args.verbose:
            logger.exception("failed")
        print(f"eegcrp {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(command: str, config: StudyConfig, progress: bool, overwrite: bool) -> int:
    from . import pipeline

    start = time.perf_counter()
    if command == "prepare":
        pipeline.save_config(config)
        _, summary = pipeline.stage_prepare(config, progress=progress)
        print(summary.to_string())
        print(f"\nwindows: {int(summary['n_epochs'].sum())}, subjects: {len(summary)}; "
              f"summary in {Path(config.output_dir) / 'prepare' / 'summary.csv'}")
    elif command == "train":
        pipeline.save_config(config)
        dataset, _ = pipeline.stage_prepare(config, progress=progress)
        metrics = pipeline.stage_train(config, dataset, progress, overwrite)
        from .training import summarize

        print(summarize(metrics).to_string())
        print(f"\ntraining results in {Path(config.output_dir) / 'training'}")
    elif command == "explain":
        pipeline.save_config(config)
        dataset, _ = pipeline.stage_prepare(config, progress=progress)
        if not (Path(config.output_dir) / "training" / "metrics.csv").exists():
            raise ConfigError(
                f"no trained models in {Path(config.output_dir) / 'training'}; run "
                "'eegcrp train' with the same config and --out first"
            )
        index = pipeline.stage_explain(config, dataset, progress, overwrite)
        print(f"explained {len(index.get('computed', []))} fold(s), "
              f"{len(index.get('skipped', []))} already done; results in "
              f"{Path(config.output_dir) / 'explain'}")
    elif command == "report":
        print(f"report: {pipeline.stage_report(config)}")
    elif command in ("run", "demo"):
        path = pipeline.run_stages(config, progress=progress, overwrite=overwrite)
        elapsed = time.perf_counter() - start
        print(f"done in {elapsed:.0f} s; report: {path.resolve()}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
