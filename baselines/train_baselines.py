"""Train the shipped baselines with their default recipes and write the checkpoints into the package.

    .venv/bin/python baselines/train_baselines.py [--models fc-ilr ...] [--datasets circles2d ...] [--seeds 0 1 2]

Each run is exactly ``fieldbench train MODEL --dataset DATASET --seed N`` (the recipe is
``fieldbench.models.RECIPES[MODEL]``), written to ``fieldbench/models/checkpoints/MODEL-DATASET-seedN.eqx``
in this checkout (package data: the wheel ships them, ``fieldbench benchmark`` scores them).
Finished checkpoints are kept (rerun to fill in what is missing); an interrupted run resumes.
"""

import argparse
import json
import time
from pathlib import Path

from fieldbench.models import recipe_config, run_recipe
from fieldbench.models._shipped import SHIPPED_PATH

#: The checkout's package data folder (not the installed package's: this script is repository tooling).
CHECKPOINTS = Path(__file__).resolve().parents[1] / SHIPPED_PATH


def checkpoint_path(model: str, dataset: str, seed: int) -> Path:
    return CHECKPOINTS / f"{model}-{dataset}-seed{seed}.eqx"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["fc-ilr", "fc-ilr-bilinear-wide", "fc-ilr-bilinear",
                                                        "fc-ilr-bilinear-fast", "fourier", "fourier-harmonic", "fc-inr",
                                                        "linear"])
    parser.add_argument("--datasets", nargs="+", default=["circles2d", "prisms2d"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    for dataset in args.datasets:
        for model in args.models:
            for seed in args.seeds:
                target = checkpoint_path(model, dataset, seed)
                if target.exists():
                    continue
                started = time.perf_counter()
                result = run_recipe(recipe_config(model, dataset, seed=seed), target,
                                    progress=lambda record: print(json.dumps(record, default=float), flush=True))
                print(json.dumps({"model": model, "dataset": dataset, "seed": seed,
                                  "seconds": round(time.perf_counter() - started, 1),
                                  "validation": result.history[-1]}, default=float), flush=True)


if __name__ == "__main__":
    main()
