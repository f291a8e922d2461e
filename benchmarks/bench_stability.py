"""Concept stability against the number of repetitions R, on one finished study.

Reclusters the explained filters of the first r repetitions for each r (the study's own
concepts settings) and prints per class the pooled clusters, the stable ones, the share of
clustered filters in stable clusters, the mean recurrence and the mean adjusted Rand index of
each repetition's clustering against the pooled one
(:func:`eegcrp.concepts.stability_by_repetitions`).

Example::

    python benchmarks/bench_stability.py /tmp/rd21/mmidb --counts 2 3 5 10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from eegcrp.concepts import analysis_variables, stability_by_repetitions
from eegcrp.config import load_config
from eegcrp.store import open_relevance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a study's output_dir (explain finished)")
    parser.add_argument("--counts", type=int, nargs="+", default=[2, 3, 5, 10])
    parser.add_argument("--csv", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    config = load_config(args.run / "config.yaml")
    run = open_relevance(args.run)
    start = time.perf_counter()
    table = stability_by_repetitions(run.to_dataset(analysis_variables(config.concepts)),
                                     config.concepts, args.counts, seed=config.concepts.seed)
    if args.csv is not None:
        table.to_csv(args.csv, index=False)
    print(table.round(3).to_string(index=False))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
