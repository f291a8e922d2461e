"""Command-line interface: one subcommand per registered stage, plus ``run``, ``demo``,
``compare`` and ``to-bids``.

``eegcrp <stage> CONFIG.yaml`` runs one stage (after checking the stages it reads),
``eegcrp run CONFIG.yaml`` every stage in order and the report, ``eegcrp demo`` the embedded
simulated study. Every command takes ``--out DIR`` (replaces the config's ``output_dir``)
and repeatable ``--set KEY=VALUE`` overrides with dotted keys, so a study is one YAML file
and a quick variant (``--set training.repetitions=1``) needs no copy of it.
``eegcrp compare RUN [RUN ...] --out PAGE.html`` puts finished studies side by side, and
``eegcrp to-bids CONFIG OUT`` writes a dataset as BIDS. Errors caused
by the input (config, data, stage results, output and cache paths the operating system
refuses) exit with status 2 and a message that names the fix; ``--verbose`` adds the
traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml

from .config import StudyConfig, load_config
from .errors import ConfigError, EEGCRPError
from .io import package_version

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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace this stage's own results (default: resume results of "
                             "the same configuration, refuse those of another)")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbosity.add_argument("-q", "--quiet", action="store_true",
                           help="warnings only, no progress bars")


def _parser() -> argparse.ArgumentParser:
    from .stages import STAGES

    parser = argparse.ArgumentParser(
        prog="eegcrp",
        description="What did my EEG decoder learn? EEGNet leave-one-subject-out training "
                    "and concept relevance analysis, stage by stage.",
    )
    parser.add_argument("--version", action="version", version=f"eegcrp {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers = {name: sub.add_parser(name, help=stage.help) for name, stage in STAGES.items()}
    parsers["run"] = sub.add_parser("run", help="run every stage in order, then write the "
                                    "report")
    for parser_ in parsers.values():
        _common(parser_)
    demo = sub.add_parser("demo", help="run everything on simulated data (no download)")
    _common(demo, config_required=False)
    compare = sub.add_parser("compare", help="put finished studies side by side on one HTML "
                             "page (decoding, baselines, sources, concepts, regions)")
    compare.add_argument("runs", type=Path, nargs="+", metavar="RUN",
                         help="a finished study's output folder")
    compare.add_argument("--out", type=Path, default=Path("compare.html"),
                         help="the page to write (default compare.html)")
    compare.add_argument("--label", dest="labels", action="append", default=None,
                         help="a study's name on the page, one per RUN in order (default: "
                              "its dataset, with its settings where two share one)")
    to_bids = sub.add_parser("to-bids", help="write the dataset of CONFIG as a BIDS dataset "
                             "(mne-bids), events included")
    to_bids.add_argument("config", type=Path, help="study configuration (YAML)")
    to_bids.add_argument("bids_root", type=Path, metavar="OUT", help="the BIDS root to write")
    to_bids.add_argument("--task", default=None, help="BIDS task label (default: the "
                         "dataset's task without '_')")
    to_bids.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help="override a config value (repeatable)")
    to_bids.add_argument("--overwrite", action="store_true",
                         help="write into a non-empty BIDS root, replacing these subjects")
    for parser_ in (compare, to_bids):
        verbosity = parser_.add_mutually_exclusive_group()
        verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        verbosity.add_argument("-q", "--quiet", action="store_true", help="warnings only")

    for parser_ in (parsers["run"], parsers["controls"], demo):
        parser_.add_argument("--controls", action="store_true",
                             help="retrain the study under its confound controls (the same "
                                  "as --set controls.enabled=true; each costs a training run)")
    return parser


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
    from .training import retain_freed_memory

    retain_freed_memory(children=True)  # process-wide: here, once, never in the library
    if getattr(args, "controls", False):
        args.overrides.append("controls.enabled=true")
    try:
        if args.command == "compare":
            from .report.compare import build_comparison

            page = build_comparison(args.runs, args.out, args.labels)
            print(f"comparison of {len(args.runs)} studies: {page.resolve()}")
            return 0
        if args.command == "to-bids":
            from .data.to_bids import write_bids

            done = write_bids(load_config(args.config, args.overrides), args.bids_root,
                              task=args.task, overwrite=args.overwrite,
                              progress=not args.quiet)
            print(f"BIDS dataset in {args.bids_root.resolve()}: {len(done['subjects'])} "
                  f"subjects, {done['runs']} runs, {done['trials']} trials, task "
                  f"{done['task']}; read it with\n"
                  + yaml.safe_dump({"dataset": done["dataset"]}, sort_keys=False))
            return 0
        if args.command == "demo":
            config = demo_config(args.overrides, args.out)
        else:
            config = load_config(args.config, args.overrides, output_dir=args.out)
        _check_folders(config)
        return _dispatch(args.command, config, progress=not args.quiet,
                         overwrite=args.overwrite)
    except EEGCRPError as exc:
        if args.verbose:
            logger.exception("failed")
        print(f"eegcrp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user chose cannot be used (permissions, disk, ...)
        if args.verbose:
            logger.exception("failed")
        where = f" {exc.filename}" if exc.filename else ""
        print(f"eegcrp {args.command}: error: cannot use{where}: {exc.strerror or exc}; "
              "choose writable folders for --out / output_dir and cache_dir (and check the "
              "free disk space), then run the same command again", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"eegcrp {args.command}: interrupted; re-run the same command to resume",
              file=sys.stderr)
        return 130


def _check_folders(config: StudyConfig) -> None:
    """Refuse output and cache paths that cannot be folders we write to, creating nothing.

    Raises
    ------
    ConfigError
        When the path or one of its parents is a file, or the nearest existing folder is
        not writable.
    """
    for key, path in (("output_dir (--out)", Path(config.output_dir)),
                      ("cache_dir", Path(config.resolved_cache_dir()))):
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            what = "is a file" if existing == path else f"lies below the file {existing}"
            raise ConfigError(f"{key} {path} {what}; choose a folder path")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(f"{key} {path}: the folder {existing} is not writable; choose "
                              "a folder you can write to")


def _dispatch(command: str, config: StudyConfig, *, progress: bool, overwrite: bool) -> int:
    from .stages import STAGES, run_all, run_stage

    start = time.perf_counter()
    if command in ("run", "demo"):
        path = run_all(config, progress=progress, overwrite=overwrite,
                       replace_other=command == "demo")
        print(f"done in {time.perf_counter() - start:.0f} s; report: {Path(path).resolve()}")
        return 0
    result = run_stage(command, config, progress=progress, overwrite=overwrite)
    describe = STAGES[command].describe
    if describe is not None:
        print(describe(result, config))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
