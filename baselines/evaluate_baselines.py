"""Score the shipped checkpoints into leaderboard records and print the README's results tables.

    .venv/bin/python baselines/evaluate_baselines.py [--datasets circles2d prisms2d] [--markdown]

For every model with checkpoints ``fieldbench/models/checkpoints/MODEL-DATASET-seedN.eqx`` (the
checkout's package data, where ``train_baselines.py`` writes them), this is
``fieldbench submit MODEL --name MODEL --checkpoint ...seed0.eqx --checkpoint ...seed1.eqx ...
--dataset DATASET --replace``: each seed is evaluated on every test split (Eq. 10 medians and the
global relative L2 error, potential and field) and the record in ``leaderboard/records/`` holds
the first seed's full metrics plus mean, std and values over seeds, and its submission metadata
from ``baselines/submissions.json`` (also what ``fieldbench leaderboard migrate --metadata`` gives
the committed records). A record whose seed checkpoints are unchanged is kept (rerun after
training more seeds). ``--markdown`` prints the
tables of the README from the records.
"""

import argparse
import json
import math
import re
from pathlib import Path

from fieldbench._io import file_sha256
from fieldbench.leaderboard import canonical_record, record_path, submit
from fieldbench.leaderboard._record import resolve_checkpoint
from fieldbench.models._shipped import SHIPPED_PATH

HERE = Path(__file__).resolve().parent
RECORDS = HERE.parent / "leaderboard" / "records"
CHECKPOINTS = HERE.parent / SHIPPED_PATH
#: Each baseline's submission metadata (record name -> authors, description).
SUBMISSIONS = json.loads((HERE / "submissions.json").read_text())
NAME = re.compile(r"^(?P<model>.+)-(?P<dataset>[a-z0-9]+)-seed(?P<seed>\d+)$")
#: The paper's Table 2 (median relative error of phi, %, circles2d): single, multi.
PAPER = {"fourier": (4.74, 5.73), "fc-ilr": (4.38, 4.76), "fc-inr": (3.68, None), "linear": (70.0, 71.2)}
ORDER = ["fc-ilr-bilinear-wide", "fc-ilr-bilinear", "fc-ilr-bilinear-fast", "fourier-bilinear", "fc-ilr", "fourier",
         "fourier-harmonic", "fc-inr", "linear"]


def seed_checkpoints(datasets) -> dict[tuple[str, str], list[Path]]:
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for path in sorted(CHECKPOINTS.glob("*-seed*.eqx")):
        match = NAME.match(path.stem)
        if match and match["dataset"] in datasets and not path.name.endswith((".opt.eqx", ".basis.eqx")):
            groups.setdefault((match["model"], match["dataset"]), []).append((int(match["seed"]), path))
    return {key: [p for _, p in sorted(value)] for key, value in groups.items()}


def up_to_date(record: Path, checkpoints: list[Path]) -> bool:
    if not record.is_file():
        return False
    seeds = (json.loads(record.read_text()).get("seeds") or {}).get("checkpoints", [])
    return [s["sha256"] for s in seeds] == [file_sha256(c) for c in checkpoints]


def _cell(values: dict | None) -> str:
    if not values or values.get("mean") is None or not math.isfinite(values["mean"]):
        return "-"
    mean, std = values["mean"], values["std"]
    if not math.isfinite(std):
        return f"{mean:.3g}" if mean < 10 else f"{mean:.1f}"
    return f"{mean:.3g} ± {std:.2g}" if mean < 10 else f"{mean:.1f} ± {std:.1f}"


def _seed0(record: dict, split: str, metric: str) -> dict | None:
    """A split the seeds were not summarised on: the first seed's value, as a summary without std."""
    value = record["metrics"].get(split, {}).get(metric)
    return None if value is None else {"mean": value, "std": float("nan")}


def markdown(dataset: str) -> str:
    # Records written before layout version 2 key their splits test-multi; canonical_record maps them.
    records = [canonical_record(json.loads(p.read_text())) for p in sorted(RECORDS.glob(f"*__{dataset}.json"))]
    records = [r for r in records if r.get("seeds")]
    records.sort(key=lambda r: ORDER.index(r["name"]) if r["name"] in ORDER else len(ORDER))
    lines = [f"| {dataset} (%, mean ± std over seeds) | seeds | parameters | train (min) | single phi | multi phi "
             "| overlap phi | multi H | multi phi rel. L2 | paper single / multi |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for record in records:
        metrics = record["seeds"]["metrics"]
        get = lambda split, metric: metrics.get(split, {}).get(metric)  # noqa: E731
        paper = PAPER.get(record["name"]) if dataset == "circles2d" else None
        minutes = [json.loads(resolve_checkpoint(c["path"], RECORDS).with_suffix(".json").read_text()).get("seconds")
                   for c in record["seeds"]["checkpoints"]]
        minutes = [m / 60 for m in minutes if m]
        single = record["seeds"]["count"] == 1
        strip = lambda summary: summary and ({"mean": summary["mean"], "std": float("nan")} if single  # noqa: E731
                                             else summary)
        cells = [f"`{record['name']}`", str(record["seeds"]["count"]), f"{record['model']['parameters']:,}",
                 (f"{min(minutes):.1f}" if single else f"{min(minutes):.1f}-{max(minutes):.1f}") if minutes else "-",
                 _cell(strip(get("test_single", "phi_error"))), _cell(strip(get("test_multi", "phi_error"))),
                 _cell(get("test_overlap", "phi_error") or _seed0(record, "test_overlap", "phi_error")),
                 _cell(strip(get("test_multi", "field_error"))),
                 _cell(strip(get("test_multi", "phi_relative_l2"))),
                 " / ".join("-" if v is None else f"{v:g}" for v in paper) if paper else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["circles2d", "prisms2d"])
    parser.add_argument("--models", nargs="+", default=None, help="Only these models (default: all).")
    parser.add_argument("--markdown", action="store_true", help="Print the README tables from the records.")
    args = parser.parse_args()
    for (model, dataset), checkpoints in seed_checkpoints(args.datasets).items():
        if args.models and model not in args.models:
            continue
        target = record_path(RECORDS, model, dataset)
        if up_to_date(target, checkpoints):
            continue
        print(f"scoring {model} on {dataset} ({len(checkpoints)} seeds)", flush=True)
        submit(model, model, checkpoint=checkpoints, datasets=[dataset], directory=RECORDS, replace=True,
               submission=SUBMISSIONS[model])
    if args.markdown:
        for dataset in args.datasets:
            print(markdown(dataset) + "\n")


if __name__ == "__main__":
    main()
