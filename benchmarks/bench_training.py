"""Training throughput of EEGNet (windows per second and epoch).

    .venv/bin/python benchmarks/bench_training.py --channels 64 --times 384 --threads 2

Trains on random windows with :func:`eegcrp.training.train_model` (the loop every LOSO fold
runs: index-shuffled batches from in-memory tensors, Adam, max-norm projection) and reports
the median epoch time over ``--epochs`` epochs after one warm-up epoch, and the process'
peak resident memory (``ru_maxrss``).
"""

from __future__ import annotations

import resource
import statistics
import time

import numpy as np
import torch

from _common import random_windows_parser
from eegcrp.config import ModelConfig, TrainingConfig
from eegcrp.models import build_model
from eegcrp.training import normalize_windows, resolve_device, train_model


def main() -> None:
    parser = random_windows_parser(__doc__, channels=64, threads=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--variant", default="eegnet", choices=["eegnet", "thesis"])
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    x = normalize_windows(rng.standard_normal((args.windows, args.channels, args.times)))
    y = rng.integers(0, 2, args.windows)
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant=args.variant), args.channels, args.times, 2, 128.0)
    config = TrainingConfig(max_epochs=1, batch_size=args.batch_size)
    x_t, y_t = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)

    train_model(model, x_t, y_t, config=config, rng=rng, device=device)  # warm-up
    times = []
    for _ in range(args.epochs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_model(model, x_t, y_t, config=config, rng=rng, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(
        f"{args.variant}: {args.channels} ch x {args.times} samples, {args.windows} windows, "
        f"batch {args.batch_size}, {args.threads} thread(s), {device}: "
        f"median epoch {median:.3f} s -> {args.windows / median:.0f} windows/s "
        f"(best {args.windows / min(times):.0f}, worst {args.windows / max(times):.0f}); "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
