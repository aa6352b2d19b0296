"""Render the leaderboard: ``README.md`` (tables per dataset) and ``index.html``, one self-contained
file (data, plotly.js and charts inlined; nothing to fetch, no image files): per dataset a ranked,
sortable table with the paper's Table 2 as reference rows and each record's details, the rank-L
ceiling, error by distance and accuracy against speed (``_charts``), and the runtime scaling.

Local results (``_standing.local_reasons``: a mini dataset or a sample limit, a learned model with
fewer than three seeds, missing submission metadata) are listed apart, under "Local results" with
their reasons, and kept out of the tables, the plots and the record count of the board proper."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

from .._io import atomic_write_text
from ..evaluation import ScalingResult
from ..pipeline import canonical_split
from ._charts import (Colours, distance_chart, frontier_chart, frontier_points, plotly_script, run_label, scaling_chart,
                      speed_chart)
from ._record import TEST_SPLITS, canonical_record, load_records
from ._standing import VALIDATION_SPLIT, local_reasons

__all__ = ["render", "COLUMNS"]

COLUMNS = [("rank", "rank"), ("name", "model"), ("additive", "additive"), ("harmonic", "harmonic"),
           ("parameters", "parameters"), ("seeds", "seeds")] + [
    (f"{split}:{metric}", f"{split} {label} (%)") for split in TEST_SPLITS
    for metric, label in (("phi_error", "phi"), ("field_error", "H"))
] + [("test_multi:phi_relative_l2", "test_multi phi rel. L2 (%)"), (f"{VALIDATION_SPLIT}:phi_error", "val phi (%)"),
      ("eval_us_per_point", "eval us/point"),
      ("timed_on", "timed on"), ("date", "date")]


def _row(record: dict) -> dict:
    """A record's board row: with several seeds, each error is their mean (and ``key:std`` its std)."""
    record = canonical_record(record)
    seeds = record.get("seeds") or {}
    row = {"name": record["name"], "additive": record["model"]["additive"], "harmonic": record["model"]["harmonic"],
           "parameters": record["model"]["parameters"], "seeds": seeds.get("count", 1)}
    for split in TEST_SPLITS + (VALIDATION_SPLIT,):
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


#: The extra column of the local results: why each is not official.
LOCAL_COLUMN = ("local", "why local")


def _anchor(record: dict) -> str:
    return "rec-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in
                            f"{record['dataset']['name']}-{record['name']}")


def _html_cell(row: dict, key: str, record: dict) -> str:
    text = html.escape(_cell(row, key))
    if key == "name":
        text = f'<a href="#{_anchor(record)}">{text}</a>'
    elif key in ("additive", "harmonic"):
        text = f'<span class="badge {"yes" if row[key] else "no"}">{key if row[key] else "no"}</span>'
    return _td(row.get(key), text)


def _td(value, text: str) -> str:
    """A table cell; ``data-value`` is what the page's sort compares."""
    return f'<td data-value="{html.escape(str(value) if value is not None else "")}">{text}</td>'


def _table(group: list[dict], columns: list[tuple[str, str]]) -> tuple[list[str], str]:
    """Markdown lines and the HTML rows of a board table, ranked in the order given (1 = best)."""
    markdown, rows_html = [], []
    for rank, record in enumerate(group, 1):
        row = _row(record) | {"local": "; ".join(local_reasons(record)) or None, "rank": rank,
                              "date": str((record.get("provenance") or {}).get("date", ""))[:10] or None}
        markdown.append("| " + " | ".join(_cell(row, key) for key, _ in columns) + " |")
        rows_html.append("<tr>" + "".join(_html_cell(row, key, record) for key, _ in columns) + "</tr>")
    return markdown, "".join(rows_html)


#: The paper's own numbers (Table 2, circles2d, median relative error of phi, %, mean +- std over
#: seeds where it gives one), shown as reference rows: they were not rescored here.
PAPER_TABLE_2 = {"circles2d": [("Fourier (paper, Eq. 11)", (4.74, 0.38), (5.73, 0.45)),
                               ("FC+ILR (paper)", (4.38, 0.32), (4.76, 0.39)),
                               ("FC INR (paper)", (3.68, None), (None, None)),
                               ("Linear (paper)", (70.0, None), (71.2, None))]}
_PAPER_TEXT = "Rows in italics: the paper's Table 2, as published (not rescored here; phi only)."


def _paper_rows(dataset: str, columns: list[tuple[str, str]]) -> tuple[list[str], str]:
    markdown, rows_html = [], []
    for name, single, multi in PAPER_TABLE_2.get(dataset, []):
        row = {"name": name, "rank": "paper"}
        for split, (mean, std) in (("test_single", single), ("test_multi", multi)):
            row[f"{split}:phi_error"], row[f"{split}:phi_error:std"] = mean, std
        markdown.append("| " + " | ".join(f"*{_cell(row, key)}*" if key == "name" else _cell(row, key)
                                          for key, _ in columns) + " |")
        cells = "".join(_td(row.get(key), html.escape(_cell(row, key))) for key, _ in columns)
        rows_html.append(f'<tr class="reference">{cells}</tr>')
    return markdown, "".join(rows_html)


def _link(value) -> str:
    if not value:
        return "not given"
    text = html.escape(str(value))
    if str(value).startswith(("https://", "http://")):
        return f'<a href="{text}">{text}</a>'
    if str(value).startswith("10."):  # a DOI
        return f'<a href="https://doi.org/{text}">{text}</a>'
    return text


def _details(record: dict) -> str:
    """A record's details: who, where the code and paper are, what was scored, where it was timed."""
    submission = record.get("submission") or {}
    model, provenance = record["model"], record.get("provenance") or {}
    code = model.get("code") or {}
    items = [("authors", html.escape(", ".join(submission.get("authors") or [])) or "not given"),
             ("contact", html.escape(str(submission.get("contact") or "not given"))),
             ("description", html.escape(str(submission.get("description") or "not given"))),
             ("code", _link(submission.get("code_url")) + (f" ({html.escape(code.get('module', ''))}"
                                                          f"{'.' if code.get('module') else ''}"
                                                          f"{html.escape(code.get('class', ''))})" if code else "")),
             ("paper", _link(submission.get("paper"))),
             ("checkpoint", html.escape(str(model.get("checkpoint") or "none (a reference method)"))),
             ("hyperparameters", html.escape(json.dumps(model.get("hyperparameters") or {}, sort_keys=True))),
             ("dataset", html.escape(f"{record['dataset']['name']} (content sha256 "
                                     f"{record['dataset']['content_sha256'][:12]}...)")),
             ("timed on", html.escape(str(((record.get("speed") or {}).get("device") or {}).get("label", "-")))),
             ("scored on", html.escape(f"{provenance.get('device', '-')}, {provenance.get('date', '-')}, fieldbench "
                                       f"{provenance.get('fieldbench_version', '-')} (commit "
                                       f"{str(provenance.get('git_commit') or '-')[:10]}), Python "
                                       f"{provenance.get('python', '-')}, JAX {provenance.get('jax', '-')}")),
             ("record", html.escape(f"{Path(record.get('_path', '')).name}, version {record.get('record_version')}"))]
    rows = "".join(f"<dt>{key}</dt><dd>{value}</dd>" for key, value in items)
    return (f'<details id="{_anchor(record)}"><summary>{html.escape(record["name"])}</summary>'
            f"<dl>{rows}</dl></details>")


def _header(columns: list[tuple[str, str]]) -> tuple[list[str], str]:
    return (["| " + " | ".join(label for _, label in columns) + " |", "|" + "---|" * len(columns)],
            "".join(f"<th>{html.escape(label)}</th>" for _, label in columns))


_LOCAL_TEXT = ("Records that are not official (the 'why local' column: a mini dataset or a sample limit, a learned "
               "model with fewer than 3 seeds, missing submission metadata): not comparable with the tables above "
               "and left out of their plots. `fieldbench leaderboard verify` refuses them as official; resubmit "
               "as the column says to enter the board.")


_LOCAL_RUN_TEXT = ("A local run's board (the main job, on mini datasets): no record here is official, and its "
                   "numbers are medians over a few dozen samples; the official board is leaderboard/ in the "
                   "repository.")


def _by_dataset(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["dataset"]["name"], []).append(record)
    for group in groups.values():
        group.sort(key=lambda r: (r["metrics"].get("test_multi", {}).get("phi_error") or float("inf")))
    return groups


_SORT_SCRIPT = """
document.querySelectorAll('table.board').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, column) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.from(body.rows);
      var ascending = th.dataset.order !== 'asc';
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
        if (x === '' || y === '') { return (x === '') - (y === ''); }  // blanks last, either way
        var nx = Number(x), ny = Number(y);
        var cmp = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
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


def _scaling_runs(folder: Path) -> dict[str, list[ScalingResult]]:
    """dataset -> its long scaling runs (``fieldbench scaling --out``): ``folder/DATASET/scaling.json``
    first (the run the frontier is read from), then any ``folder/DATASET/*/scaling.json`` (the same
    sweep on another core count: Fig. 5a draws them together)."""
    found: dict[str, list[ScalingResult]] = {}
    for main in sorted(folder.glob("*/scaling.json")) if folder.is_dir() else []:
        for path in [main] + sorted(main.parent.glob("*/scaling.json")):
            try:
                found.setdefault(main.parent.name, []).append(ScalingResult.from_dict(json.loads(path.read_text())))
            except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
                raise ValueError(f"{path} is not a scaling result ({error}); rerun the `fieldbench scaling ... "
                                 f"--out {path.parent}` command in leaderboard/README.md") from None
    return found


def _frontier_table(result: ScalingResult, errors: dict[str, float]) -> tuple[list[str], str, str, int | None]:
    """Markdown lines, an HTML table, the text above them and the size M = N: the frontier of one
    scaling run."""
    size, points, missing = frontier_points(result, errors)
    absent = sorted(set(errors) - {row.method for row in result.rows})
    fmm = {p["points"]: p["total_s"] for p in points if p["method"] == "fmm"}
    head = ["method", "points", "encode (s)", "evaluate (s)", "total (s)", "us per (source + point)",
            "test_multi phi (%)", "vs corrected FMM"]
    rows = []
    for p in sorted(points, key=lambda p: (p["points"], p["total_s"])):
        ratio = fmm.get(p["points"])
        rows.append([p["method"], p["points"], _format(p["encode_s"]), _format(p["evaluate_s"]), _format(p["total_s"]),
                     _format(p["us_per_source_and_point"]), _format(p["phi_error"]),
                     "(the reference)" if p["method"] == "fmm" or not ratio else
                     f"{ratio / p['total_s']:.2f}x faster" if p["total_s"] < ratio else
                     f"{p['total_s'] / ratio:.2f}x slower"])
    family = result.settings.get("family", "disc")
    once = sorted({f"{p['method']} ({p['points']})" for p in points if p.get("one_call")})
    text = (f"One `fieldbench scaling` run, every method on the same device ({result.environment.get('device', '')}) "
            f"and core count, at M = N = {size:,.0f} {family} sources and points (the largest size of the run): "
            "encode and evaluate times, best of the repeats, compilation excluded; the error is the record's "
            "test_multi median (mean over seeds). A learned model's cost does not depend on where the points are; "
            "the corrected FMM pays its interior correction for points inside sources."
            + (f" Timed by its first call alone (it ran past the run's time budget: an upper bound, compilation "
               f"included if any): {', '.join(once)}." if once else "")
            + (f" Not timed at that size (past the run's time budget): {', '.join(missing)}." if missing else "")
            + (f" Records not in this run (rerun the command with their checkpoints to add them): "
               f"{', '.join(absent)}." if absent else ""))
    return (*_plain_table(head, rows), text, size)


def _plain_table(head: list[str], rows: list[list[str]]) -> tuple[list[str], str]:
    """The same table as markdown lines and as HTML (text cells, escaped)."""
    markdown = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    table = ('<table class="board"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head)
             + f"</tr></thead><tbody>{body}</tbody></table>")
    return markdown, table


def _parallel_table(runs: list[ScalingResult]) -> tuple[list[str], str, str]:
    """Markdown lines, an HTML table and the text above them: encode + evaluate at the largest M = N
    of the first run, in each of a dataset's scaling runs (sequential and parallel, Fig. 5a)."""
    size, first, _ = frontier_points(runs[0], {})
    labels = [run_label(run) for run in runs]
    totals = []
    for run in runs:
        _, points, _ = frontier_points(run, {})
        totals.append({(p["method"], p["points"]): p["total_s"] for p in points if p["M"] == size})
    head = ["method", "points"] + [f"{label} (s)" for label in labels] + [f"{labels[-1]} vs {labels[0]}"]
    rows = []
    for key in sorted(totals[0], key=lambda k: (k[1], totals[0][k])):
        seconds = [total.get(key) for total in totals]
        ratio = f"{seconds[0] / seconds[-1]:.2f}x" if seconds[0] and seconds[-1] else "not timed"
        rows.append(list(key) + [_format(t) if t else "not timed" for t in seconds] + [ratio])
    lines, table = _plain_table(head, rows)
    text = (f"Encode + evaluate at M = N = {size:,.0f} in each of this dataset's scaling runs (the same command "
            f"on {' and on '.join(labels)}; Fig. 5a below draws every size): how each method uses more cores.")
    return lines, table, text


def _ceiling_table(results: list[dict]) -> tuple[list[str], str]:
    """Markdown lines and an HTML table: Eq. 10 of the best rank-L additive model per split."""
    columns = {"phi_error": "phi median", "phi_relative_l2": "phi rel. L2", "field_error": "H median (joint)",
               "field_relative_l2": "H rel. L2 (joint)"}
    keys = [(r, key) for r in results for key in columns if r.get(key) is not None]
    head = ["code size L"] + [f"{canonical_split(r['split'])} {columns[key]} (%)" for r, key in keys]
    rows = [[str(rank)] + [_format(r[key][i]) for r, key in keys] for i, rank in enumerate(results[0]["ranks"])]
    return _plain_table(head, rows)


_CEILING_TEXT = ("The rank-L ceiling: the best any additive model with an L-dimensional code can score "
                 "(SVD of exact potentials of training sources at fixed points, held-out samples projected; "
                 "`fieldbench ceiling DATASET`). It is optimal in the least-squares sense, so a model trained on a "
                 "relative loss can beat its median; its relative L2 error is the one to compare (a bound up to "
                 "the difference between training and held-out sources). The joint columns are the best space "
                 "for potential and field together (`--field`). That space spends its rank on the field's jump "
                 "at source boundaries, which no smooth rank-L model represents, so models trained on a relative "
                 "loss beat its H median by far; for the field only its relative L2 error is a bound.")


_SPEED_TEXT = ("eval us/point: the warm time per point of the evaluator's call (encode + evaluate) on a batch of "
               "test_multi, one warm-up call excluded (tracing, compilation, first dispatch), best of the timed calls, "
               "on the device in 'timed on'. Speeds compare only between records timed on one device.")


def render(records_dir: str | Path = "leaderboard/records", out_dir: str | Path | None = None, *,
           local_run: bool = False) -> dict[str, Path]:
    """Write README.md and index.html (one self-contained file) into ``out_dir`` (default: the
    records' parent), with the rank-L ceilings found in ``<records' parent>/ceiling/`` (written by
    ``fieldbench ceiling --json``). The same records render the same bytes. ``local_run``: the board
    of one local run (the main job's, on mini datasets), every record in the tables and charts under
    a banner saying that none is official."""
    records_dir = Path(records_dir)
    out_dir = Path(out_dir) if out_dir else records_dir.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = load_records(records_dir)
    records, local = [], []  # the board proper (official results only, unless a local run) and the rest
    for record in loaded:
        (records if local_run or not local_reasons(record) else local).append(record)
    groups = _by_dataset(records)
    ceilings = _ceilings(records_dir.parent / "ceiling")
    runs = _scaling_runs(records_dir.parent / "scaling")
    colours = Colours()
    markdown = ["# fieldbench leaderboard", "",
                "Median relative errors (paper Eq. 10, %) on the test splits of each standard dataset "
                "(mean ± std over seeds where a record has several), ranked by test_multi phi. "
                "Rendered by `fieldbench leaderboard` from the records in `records/`; validated by "
                "`fieldbench leaderboard verify`. The charts (error by distance, accuracy against speed, "
                "runtime scaling) and each record's details are in `index.html`, one self-contained file.",
                "", _SPEED_TEXT, ""] + (["", _LOCAL_RUN_TEXT, ""] if local_run else [])
    sections = []
    for dataset, group in groups.items():
        head, header = _header(COLUMNS)
        paper_lines, paper_html = _paper_rows(dataset, COLUMNS)
        lines, rows_html = _table(group, COLUMNS)
        markdown += [f"## {dataset}", ""] + head + lines + paper_lines
        if paper_lines:
            markdown += ["", _PAPER_TEXT]
        markdown.append("")
        charts = [distance_chart(dataset, group, colours)]
        speed, left_out = speed_chart(dataset, [(r["name"], _row(r)) for r in group], ceilings.get(dataset), colours)
        charts.append(speed)
        note = (f"<p class=\"note\">Left out of the speed chart (timed on another device than the one most records "
                f"were timed on): {html.escape(', '.join(left_out))}.</p>" if left_out else "")
        extra_html = ""  # the ceiling, then the frontier
        if dataset in ceilings:
            lines, table = _ceiling_table(ceilings[dataset])
            markdown += [_CEILING_TEXT, ""] + lines + [""]
            extra_html = f"<h3>The rank-L ceiling</h3><p>{html.escape(_CEILING_TEXT)}</p>{table}"
        if dataset in runs:
            errors = {r["name"]: _row(r)["test_multi:phi_error"] for r in group}
            frontier_run = runs[dataset][0]
            lines, table, text, size = _frontier_table(frontier_run, errors)
            heading = f"Accuracy against cost at M = N = {size:.0e}".replace("e+0", "e")
            markdown += [f"### {heading}", "", text, ""] + lines + [""]
            figures = [frontier_chart(dataset, frontier_run, errors, ceilings.get(dataset), colours),
                       scaling_chart(runs[dataset], colours, f"chart-{dataset}-run", "Runtime scaling (Fig. 5a)",
                                     separate_runs=True)]
            if len(runs[dataset]) > 1:
                more, more_table, more_text = _parallel_table(runs[dataset])
                markdown += ["### Sequential and parallel", "", more_text, ""] + more + [""]
                table += f"<h3>Sequential and parallel</h3><p>{html.escape(more_text)}</p>{more_table}"
            extra_html += (f"<h3>{heading}</h3><p>{html.escape(text)}</p>{table}"
                           f'<div class="charts">{"".join(f for f in figures if f)}</div>')
        sections.append(
            f'<section id="{html.escape(dataset)}"><h2>{html.escape(dataset)}</h2>'
            f'<div class="scroll"><table class="board ranked"><thead><tr>{header}</tr></thead><tbody>{rows_html}'
            f'{paper_html}</tbody></table></div>{f"<p class=note>{html.escape(_PAPER_TEXT)}</p>" if paper_html else ""}'
            f'<div class="charts">{"".join(c for c in charts if c)}</div>{note}{extra_html}'
            f'<h3>Records</h3>{"".join(_details(r) for r in group)}</section>')
    scaling = scaling_chart([ScalingResult.from_dict(r["scaling"]) for r in records
                             if (r.get("scaling") or {}).get("rows")], colours,
                            title="Runtime scaling of each record's own short run (fieldbench submit)")
    if scaling:
        sections.append(f'<section id="scaling"><h2>Runtime scaling</h2>{scaling}</section>')
    if local:
        columns = COLUMNS[1:2] + [LOCAL_COLUMN] + COLUMNS[2:]
        head, header = _header(columns)
        markdown += ["## Local results", "", _LOCAL_TEXT, ""]
        tables = []
        for dataset, group in _by_dataset(local).items():
            lines, rows_html = _table(group, columns)
            markdown += [f"### {dataset} (local)", ""] + head + lines + [""]
            tables.append(f"<h3>{html.escape(dataset)} (local)</h3><table class=\"board local\"><thead><tr>"
                          f"{header}</tr></thead><tbody>{rows_html}</tbody></table>"
                          + "".join(_details(r) for r in group))
        sections.append(f'<section id="local"><h2>Local results</h2><p>{html.escape(_LOCAL_TEXT)}</p>'
                        f'{"".join(tables)}</section>')
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fieldbench leaderboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1500px; padding: 0 1em; color: #222; }}
table.board {{ border-collapse: collapse; font-size: 13px; margin: 1em 0; }}
table.board th, table.board td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
table.board th {{ background: #f0f0f0; cursor: pointer; user-select: none; }}
table.board td:nth-child(2), table.board th:nth-child(2) {{ text-align: left; }}
tr.reference td {{ font-style: italic; color: #555; background: #fafafa; }}
th[data-order="asc"]::after {{ content: " \25B2"; }} th[data-order="desc"]::after {{ content: " \25BC"; }}
.badge {{ display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px; }}
.badge.yes {{ background: #d8f0d8; color: #145214; }} .badge.no {{ background: #eee; color: #777; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1em; }}
.scroll {{ overflow-x: auto; }} table.ranked td:nth-last-child(2) {{ font-size: 11px; max-width: 14em; }}
.note {{ font-size: 13px; color: #555; }}
.banner {{ background: #fff4d6; border: 1px solid #e0c070; padding: 0.5em 1em; }}
details {{ margin: 0.3em 0; font-size: 13px; }} details dl {{ display: grid; grid-template-columns: 10em 1fr; }}
details dt {{ font-weight: 600; }} details dd {{ margin: 0; overflow-wrap: anywhere; }}
</style>
<script>{plotly_script()}</script>
</head><body>
<h1>fieldbench leaderboard</h1>
<p>Median relative errors (paper Eq. 10, %) on the test splits of each standard dataset, ranked by test_multi
phi; click a column to sort, a model for its details. {len(records)} record(s){
    f", and {len(local)} local result(s) listed apart" if local else ""}.</p>
<p class="note">{html.escape(_SPEED_TEXT)}</p>{
    f'<p class="banner">{html.escape(_LOCAL_RUN_TEXT)}</p>' if local_run else ""}
{"".join(sections)}
<script>{_SORT_SCRIPT}</script>
</body></html>
"""
    atomic_write_text(out_dir / "index.html", page)
    atomic_write_text(out_dir / "README.md", "\n".join(markdown) + "\n")
    return {"readme": out_dir / "README.md", "html": out_dir / "index.html"}
