"""Score every shipped checkpoint on the full test splits and print the README's results tables.

    .venv/bin/python baselines/evaluate_baselines.py [--datasets circles2d prisms2d] [--markdown]

Each ``checkpoints/MODEL-DATASET-seedN.eqx`` is evaluated (``fieldbench.evaluation.evaluate``:
Eq. 10 medians and the global relative L2 error, potential and field) on the test splits of the
dataset it was trained on. Results go to ``results.json`` here, keyed by the checkpoint's sha256,
so a rerun only scores what changed. ``--markdown`` prints mean +- std over seeds per model.
"""

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

from fieldbench._io import atomic_write_text, file_sha256
from fieldbench.evaluation import evaluate
from fieldbench.models import load_checkpoint

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
SPLITS = ("test-single", "test-multi", "test-overlap")
METRICS = ("phi_error", "field_error", "phi_relative_l2", "field_relative_l2")
NAME = re.compile(r"^(?P<model>.+)-(?P<dataset>[a-z0-9]+2d|[a-z0-9]+3d)-seed(?P<seed>\d+)$")
#: The paper's Table 2 (median relative error of phi, %, circles2d): single, multi.
PAPER = {"fourier": (4.74, 5.73), "fc-ilr": (4.38, 4.76), "fc-inr": (3.68, None), "linear": (70.0, 71.2)}


def score(datasets) -> dict:
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for path in sorted((HERE / "checkpoints").glob("*-seed*.eqx")):
        match = NAME.match(path.stem)
        if not match or match["dataset"] not in datasets or path.name.endswith((".opt.eqx", ".basis.eqx")):
            continue
        digest = file_sha256(path)
        if results.get(path.stem, {}).get("sha256") == digest:
            continue
        model, meta = load_checkpoint(path)
        entry = {"sha256": digest, "model": match["model"], "dataset": match["dataset"], "seed": int(match["seed"]),
                 "parameters": meta["properties"]["parameters"], "train_seconds": meta.get("seconds"),
                 "device": meta.get("device"), "splits": {}}
        for split in SPLITS:
            result = evaluate(model, match["dataset"], split)
            entry["splits"][split] = {metric: getattr(result, metric) for metric in METRICS} | {
                "by_distance": result.by_distance, "inside": result.inside, "outside": result.outside}
            print(f"{path.stem} {split}: phi {result.phi_error:.3g}% H {result.field_error:.3g}%", flush=True)
        results[path.stem] = entry
        atomic_write_text(RESULTS, json.dumps(results, indent=1, default=float) + "\n")
    return results


def _cell(values) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "-"
    mean, std = float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    digits = 3 if mean < 10 else 1
    return f"{mean:.{digits}g} ± {std:.1g}" if digits == 3 else f"{mean:.1f} ± {std:.1f}"


def markdown(results: dict, dataset: str) -> str:
    groups: dict[str, list[dict]] = {}
    for entry in results.values():
        if entry["dataset"] == dataset:
            groups.setdefault(entry["model"], []).append(entry)
    lines = [f"| {dataset} | seeds | parameters | train min | single phi | multi phi | overlap phi | multi H "
             "| multi phi rel. L2 | paper single / multi |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = ["fc-ilr-bilinear", "fourier-bilinear", "fc-ilr", "fourier", "fourier-harmonic", "fc-inr", "linear"]
    for model in sorted(groups, key=lambda m: order.index(m) if m in order else len(order)):
        entries = sorted(groups[model], key=lambda e: e["seed"])
        split = lambda name, metric: [e["splits"][name][metric] for e in entries]  # noqa: E731
        minutes = [e["train_seconds"] / 60 for e in entries if e.get("train_seconds")]
        paper = PAPER.get(model) if dataset == "circles2d" else None
        paper_text = " / ".join("-" if v is None else f"{v:g}" for v in paper) if paper else ""
        cells = [f"`{model}`", str(len(entries)), f"{entries[0]['parameters']:,}",
                 f"{np.mean(minutes):.1f}" if minutes else "-"]
        cells += [_cell(split(s, m)) for s, m in (
            ("test-single", "phi_error"), ("test-multi", "phi_error"), ("test-overlap", "phi_error"),
            ("test-multi", "field_error"), ("test-multi", "phi_relative_l2"))]
        lines.append("| " + " | ".join(cells + [paper_text]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["circles2d", "prisms2d"])
    parser.add_argument("--markdown", action="store_true", help="Print the README tables.")
    args = parser.parse_args()
    results = score(args.datasets)
    if args.markdown:
        for dataset in args.datasets:
            print(markdown(results, dataset) + "\n")


if __name__ == "__main__":
    main()
