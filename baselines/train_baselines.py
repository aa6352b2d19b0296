"""Train the quick-preset baselines on the standard datasets and write their checkpoints here.

    .venv/bin/python baselines/train_baselines.py [--steps 3000] [--models fc-ilr ...] [--datasets circles2d ...]

The budget used for the committed checkpoints is recorded in each checkpoint's JSON (``training``)
and summarised in the README. Reruns resume from existing checkpoints.
"""

import argparse
import json
import time
from pathlib import Path

from fieldbench.models import TrainConfig, train

HERE = Path(__file__).resolve().parent
#: A short schedule for CPU budgets: the paper's four stages (1e-3 ... 1e-6) spend half of a
#: short run at rates too small to move; these stages keep the same step-wise shape.
QUICK_RATES = (3e-3, 1e-3, 3e-4, 1e-4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["fc-ilr", "fourier", "fc-inr", "linear"])
    parser.add_argument("--datasets", nargs="+", default=["circles2d", "prisms2d"])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--preset", default="quick")
    args = parser.parse_args()
    for dataset in args.datasets:
        for model in args.models:
            config = TrainConfig(model=model, dataset=dataset, preset=args.preset, steps=args.steps, batch_size=100,
                                 points_per_batch=1024, learning_rates=QUICK_RATES, validate_every=500,
                                 validation_samples=256, seed=0)
            started = time.perf_counter()
            result = train(config, HERE / "checkpoints" / f"{model}-{dataset}.eqx")
            print(json.dumps({"model": model, "dataset": dataset, "seconds": round(time.perf_counter() - started, 1),
                              "validation": result.history[-1]}), flush=True)


if __name__ == "__main__":
    main()
