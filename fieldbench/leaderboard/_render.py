"""Render the leaderboard: ``README.md`` (tables per dataset) and a static ``index.html`` (sortable
tables; plots of error against distance, runtime scaling and accuracy against speed).

Records scored on the first N samples only (``dataset.samples_limit``) are local results: they are
listed apart, under "Local (limited) results" with their limit, and kept out of the tables, the
plots and the record count of the board proper."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .._io import atomic_write_text  # noqa: E402
from ..evaluation import ScalingResult  # noqa: E402
from ..pipeline import canonical_split  # noqa: E402
from ._record import TEST_SPLITS, canonical_record, load_records  # noqa: E402

__all__ = ["render", "COLUMNS"]

COLUMNS = [("name", "model"), ("additive", "additive"), ("harmonic", "harmonic"), ("parameters", "parameters"),
           ("seeds", "seeds")] + [
    (f"{split}:{metric}", f"{split} {label} (%)") for split in TEST_SPLITS
    for metric, label in (("phi_error", "phi"), ("field_error", "H"))
] + [("test_multi:phi_relative_l2", "test_multi phi rel. L2 (%)"), ("eval_us_per_point", "eval us/point"),
      ("timed_on", "timed on")]


def _row(record: dict) -> dict:
    """A record's board row: with several seeds, each error is their mean (and ``key:std`` its std)."""
    record = canonical_record(record)
    seeds = record.get("seeds") or {}
    row = {"name": record["name"], "additive": record["model"]["additive"], "harmonic": record["model"]["harmonic"],
           "parameters": record["model"]["parameters"], "seeds": seeds.get("count", 1)}
    for split in TEST_SPLITS:
        metrics = record["metrics"].get(split, {})
        for metric in ("phi_error", "field_error", "phi_relative_l2"):
            summary = seeds.get("metrics", {}).get(split, {}).get(metric)
            row[f"{split}:{metric}"] = summary["mean"] if summary else metrics.get(metric)
            if summary and len(summary["values"]) > 1:
                row[f"{split}:{metric}:std"] = summary["std"]
    # The warm timing (compilation and first dispatch excluded), never the evaluator's wall time.
    speed = record.get("speed") or {}
    row["eval_us_per_point"] = speed.get("eval_us_per_point")
    row["timed_on"] = (speed.get("device") or {}).get("label")
    return row


def _cell(row: dict, key: str) -> str:
    text = _format(row.get(key))
    std = row.get(f"{key}:std")
    return f"{text} ± {_format(std)}" if std is not None and text != "-" else text


def _format(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) >= 1e-3 else f"{value:.1e}"
    return str(value)


#: The extra column of the local (limited) results: how many samples of each split were scored.
LIMIT_COLUMN = ("samples_limit", "samples per split (limit)")


def is_limited(record: dict) -> bool:
    """Scored on the first N samples of each split only: a local result, not an official one."""
    return (record.get("dataset") or {}).get("samples_limit") is not None


def _table(group: list[dict], columns: list[tuple[str, str]]) -> tuple[list[str], str]:
    """Markdown lines and the HTML rows of a board table."""
    markdown, rows_html = [], []
    for record in group:
        row = _row(record) | {"samples_limit": record["dataset"].get("samples_limit")}
        markdown.append("| " + " | ".join(_cell(row, key) for key, _ in columns) + " |")
        cells = "".join(
            f'<td data-value="{html.escape(str(row[key]) if row.get(key) is not None else "")}">'
            f"{html.escape(_cell(row, key))}</td>" for key, _ in columns)
        rows_html.append(f"<tr>{cells}</tr>")
    return markdown, "".join(rows_html)


def _header(columns: list[tuple[str, str]]) -> tuple[list[str], str]:
    return (["| " + " | ".join(label for _, label in columns) + " |", "|" + "---|" * len(columns)],
            "".join(f"<th>{html.escape(label)}</th>" for _, label in columns))


_LOCAL_TEXT = ("Scored on only the first N samples of each split (`dataset.samples_limit`, the column below): "
               "medians over a few samples, not comparable with the tables above and left out of their plots. "
               "`fieldbench leaderboard verify` refuses these records as official; resubmit on the full splits "
               "to enter the board.")


def _by_dataset(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["dataset"]["name"], []).append(record)
    for group in groups.values():
        group.sort(key=lambda r: (r["metrics"].get("test_multi", {}).get("phi_error") or float("inf")))
    return groups


def _plot_distance(dataset: str, records: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    for record in records:
        bins = record["metrics"].get("test_single", {}).get("by_distance", [])
        xs, ys = [], []
        for b in bins:
            if b.get("phi_error") is None or not b.get("points"):
                continue
            hi = b["to"] if b["to"] is not None and math.isfinite(b["to"]) else b["from"] * 2 + 1
            xs.append((b["from"] + hi) / 2)
            ys.append(max(b["phi_error"], 1e-8))
        if xs:
            ax.plot(xs, ys, marker="o", label=record["name"])
    ax.set_yscale("log")
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("distance to the nearest boundary / that source's size (inside: minus the deepest depth)")
    ax.set_ylabel("median relative error of phi (%)")
    ax.set_title(f"{dataset}, test_single: error by distance")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def speed_plot_title(dataset: str, devices: list[str]) -> str:
    """Speeds are only comparable on one device: the title names it, or says that they are not."""
    if len(devices) == 1:
        return f"{dataset}: accuracy against speed, all timed on {devices[0]}"
    return (f"{dataset}: accuracy against speed, timed on {len(devices)} devices (one marker each): "
            "compare speeds only within one marker")


def _plot_speed(dataset: str, records: list[dict], path: Path) -> str:
    """The plot, one marker per timing device; returns its title."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    rows = [(record["name"], _row(record)) for record in records]
    rows = [(name, row) for name, row in rows
            if row["eval_us_per_point"] and row.get("test_multi:phi_error") is not None]
    devices = sorted({row["timed_on"] or "unknown device" for _, row in rows})
    for device, marker in zip(devices, "osD^v<>ph*"):
        chosen = [(name, row) for name, row in rows if (row["timed_on"] or "unknown device") == device]
        xs = [row["eval_us_per_point"] for _, row in chosen]
        ys = [max(row["test_multi:phi_error"], 1e-8) for _, row in chosen]
        ax.scatter(xs, ys, s=40, marker=marker, label=device)
        for (name, _), x, y in zip(chosen, xs, ys):
            ax.annotate(name, (x, y), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("warm evaluation time per point (us, encode + evaluate, compilation excluded)")
    ax.set_ylabel("test_multi median relative error of phi (%)")
    title = speed_plot_title(dataset, devices)
    ax.set_title(title, fontsize=8 if len(devices) > 1 else 10, wrap=True)
    if len(devices) > 1:
        ax.legend(fontsize=7, title="timed on", title_fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return title


def _plot_scaling(records: list[dict], path: Path) -> bool:
    """The runtime-scaling figure of the records' stored scaling rows, drawn like ``fieldbench
    scaling``'s (``ScalingResult.plot``, the one drawing of scaling curves). Records sharing one run
    (the exact sum's record on each dataset) hold the same rows: each is drawn once. False, and no
    file, when no record has scaling rows."""
    stored = [ScalingResult.from_dict(record["scaling"]) for record in records
              if (record.get("scaling") or {}).get("rows")]
    if not stored:
        return False
    devices = sorted({str(result.environment.get("device", "")) for result in stored})
    # The default title names the one device; timings of several devices are not comparable.
    title = None if len(devices) == 1 else f"Wall time vs size, timed on {len(devices)} devices: {'; '.join(devices)}"
    ScalingResult.combined(stored).plot(path, title=title)
    return True


_SORT_SCRIPT = """
document.querySelectorAll('table.board').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, column) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.from(body.rows);
      var ascending = th.dataset.order !== 'asc';
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return ascending ? cmp : -cmp;
      });
      rows.forEach(function (row) { body.appendChild(row); });
      table.querySelectorAll('th').forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = ascending ? 'asc' : 'desc';
    });
  });
});
"""


def _ceilings(folder: Path) -> dict[str, list[dict]]:
    """dataset -> the results of ``fieldbench ceiling DATASET --json`` kept in ``folder``."""
    found = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            results = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}); rerun `fieldbench ceiling` to rewrite it") from None
        if results:
            found[results[0]["dataset"]] = results
    return found


def _ceiling_table(results: list[dict]) -> tuple[list[str], str]:
    """Markdown lines and an HTML table: Eq. 10 of the best rank-L additive model per split."""
    head = ["code size L"] + [f"{canonical_split(r['split'])} phi {kind} (%)" for r in results
                              for kind in ("median", "rel. L2")]
    rows = [[str(rank)] + [_format(r[key][i]) for r in results for key in ("phi_error", "phi_relative_l2")]
            for i, rank in enumerate(results[0]["ranks"])]
    markdown = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    table = ('<table class="board"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head)
             + f"</tr></thead><tbody>{body}</tbody></table>")
    return markdown, table


_CEILING_TEXT = ("The rank-L ceiling: the best any additive model with an L-dimensional code can score "
                 "(SVD of exact potentials of training sources at fixed points, held-out samples projected; "
                 "`fieldbench ceiling DATASET`). It is optimal in the least-squares sense, so a model trained on a "
                 "relative loss can beat its median; its relative L2 error is the one to compare (a bound up to "
                 "the difference between training and held-out sources).")


_SPEED_TEXT = ("eval us/point: the warm time per point of the evaluator's call (encode + evaluate) on a batch of "
               "test_multi, one warm-up call excluded (tracing, compilation, first dispatch), best of the timed calls, "
               "on the device in 'timed on'. Speeds compare only between records timed on one device.")


def render(records_dir: str | Path = "leaderboard/records", out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write README.md, index.html and plots/ into ``out_dir`` (default: the records' parent), with
    the rank-L ceilings found in ``<records' parent>/ceiling/`` (written by ``fieldbench ceiling --json``)."""
    records_dir = Path(records_dir)
    out_dir = Path(out_dir) if out_dir else records_dir.parent
    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    loaded = load_records(records_dir)
    records = [r for r in loaded if not is_limited(r)]  # the board proper: official results only
    local = [r for r in loaded if is_limited(r)]
    groups = _by_dataset(records)
    ceilings = _ceilings(records_dir.parent / "ceiling")
    markdown = ["# fieldbench leaderboard", "",
                "Median relative errors (paper Eq. 10, %) on the test splits of each standard dataset "
                "(mean ± std over seeds where a record has several). "
                "Rendered by `fieldbench leaderboard` from the records in `records/`; validated by "
                "`fieldbench leaderboard verify`.", "", _SPEED_TEXT, ""]
    sections = []
    images = {}
    for dataset, group in groups.items():
        head, header = _header(COLUMNS)
        lines, rows_html = _table(group, COLUMNS)
        markdown += [f"## {dataset}", ""] + head + lines
        distance_png, speed_png = plots / f"{dataset}-error-by-distance.png", plots / f"{dataset}-accuracy-vs-speed.png"
        _plot_distance(dataset, group, distance_png)
        speed_title = _plot_speed(dataset, group, speed_png)
        images[f"{dataset}-distance"], images[f"{dataset}-speed"] = distance_png, speed_png
        markdown += ["", f"![error by distance](plots/{distance_png.name}) "
                         f"![{speed_title}](plots/{speed_png.name})", ""]
        ceiling_html = ""
        if dataset in ceilings:
            lines, table = _ceiling_table(ceilings[dataset])
            markdown += [_CEILING_TEXT, ""] + lines + [""]
            ceiling_html = f"<p>{html.escape(_CEILING_TEXT)}</p>{table}"
        sections.append(
            f'<section id="{html.escape(dataset)}"><h2>{html.escape(dataset)}</h2>'
            f'<table class="board"><thead><tr>{header}</tr></thead><tbody>{rows_html}</tbody></table>'
            f'{ceiling_html}'
            f'<div class="plots"><img alt="error by distance" src="plots/{distance_png.name}">'
            f'<img alt="{html.escape(speed_title)}" src="plots/{speed_png.name}"></div></section>')
    scaling_png = plots / "runtime-scaling.png"
    if _plot_scaling(records, scaling_png):
        images["scaling"] = scaling_png
        markdown += ["## Runtime scaling", "", f"![runtime scaling](plots/{scaling_png.name})", ""]
        sections.append(f'<section id="scaling"><h2>Runtime scaling</h2><img alt="runtime scaling" '
                        f'src="plots/{scaling_png.name}"></section>')
    if local:
        columns = COLUMNS[:1] + [LIMIT_COLUMN] + COLUMNS[1:]
        head, header = _header(columns)
        markdown += ["## Local (limited) results", "", _LOCAL_TEXT, ""]
        tables = []
        for dataset, group in _by_dataset(local).items():
            lines, rows_html = _table(group, columns)
            markdown += [f"### {dataset} (local, limited)", ""] + head + lines + [""]
            tables.append(f"<h3>{html.escape(dataset)} (local, limited)</h3><table class=\"board local\"><thead><tr>"
                          f"{header}</tr></thead><tbody>{rows_html}</tbody></table>")
        sections.append(f'<section id="local"><h2>Local (limited) results</h2><p>{html.escape(_LOCAL_TEXT)}</p>'
                        f'{"".join(tables)}</section>')
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fieldbench leaderboard</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
table.board {{ border-collapse: collapse; font-size: 14px; margin: 1em 0; }}
table.board th, table.board td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
table.board th {{ background: #f0f0f0; cursor: pointer; }}
table.board td:first-child, table.board th:first-child {{ text-align: left; }}
th[data-order="asc"]::after {{ content: " \\25B2"; }} th[data-order="desc"]::after {{ content: " \\25BC"; }}
.plots img, section img {{ max-width: 48%; margin-right: 1%; }}
</style></head><body>
<h1>fieldbench leaderboard</h1>
<p>Median relative errors (paper Eq. 10, %) on the test splits of each standard dataset; click a column to sort.
{len(records)} record(s){f", and {len(local)} local (limited) result(s) listed apart" if local else ""}.</p>
<p>{html.escape(_SPEED_TEXT)}</p>
{"".join(sections)}
<script>{_SORT_SCRIPT}</script>
</body></html>
"""
    atomic_write_text(out_dir / "index.html", page)
    atomic_write_text(out_dir / "README.md", "\n".join(markdown) + "\n")
    return {"readme": out_dir / "README.md", "html": out_dir / "index.html", **images}
