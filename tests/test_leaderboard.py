"""Leaderboard: records with provenance, validation that catches tampering, rendering, a real browser."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from _helpers import PNG_SIGNATURE

from fieldbench._config import in_ci
from fieldbench.leaderboard import load_records, record_digest, record_path, render, submit, verify_records

DATASET = "circles2d-mini"


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A record of every sample of every test split (48 each on the mini dataset: a local result)."""
    directory = tmp_path_factory.mktemp("board") / "records"
    submit("exact", "exact", datasets=[DATASET], directory=directory)
    return directory


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A record of a learned model (an untrained Linear checkpoint) in a repository of its own."""
    from fieldbench.models import build_model, save_checkpoint

    repository = tmp_path_factory.mktemp("learned")
    model, hyperparameters = build_model("linear", length_scale=3.0, seed=0)
    checkpoint = save_checkpoint(repository / "checkpoints" / "linear.eqx", model,
                                 {"model": "linear", "hyperparameters": hyperparameters,
                                  "dataset": {"name": "circles2d"}})
    (path,) = submit("linear", "linear", checkpoint=checkpoint, datasets=[DATASET],
                     directory=repository / "leaderboard" / "records", splits=["test_single"])
    return path


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A record of two seeds (untrained Linear checkpoints) in a repository of its own."""
    from fieldbench.models import build_model, save_checkpoint

    repository = tmp_path_factory.mktemp("seeded") / "repo"
    paths = []
    for seed in range(2):
        model, hyperparameters = build_model("linear", length_scale=3.0, seed=seed)
        paths.append(save_checkpoint(repository / "checkpoints" / f"linear-seed{seed}.eqx", model,
                                     {"model": "linear", "hyperparameters": hyperparameters}))
    (path,) = submit("linear", "linear", checkpoint=paths, datasets=[DATASET],
                     directory=repository / "leaderboard" / "records", splits=["test_single"])
    return path


def test_a_record_has_full_provenance_and_validates(records):
    (record,) = load_records(records)
    assert record["name"] == "exact" and record["model"]["additive"] and record["model"]["harmonic"]
    assert set(record["metrics"]) == {"test_single", "test_multi", "test_overlap", "val"}  # val: always scored
    for metrics in record["metrics"].values():
        assert metrics["phi_error"] < 1e-4 and metrics["samples"] == 48  # exact: float32 rounding only
    assert record["dataset"]["samples_limit"] is None
    provenance = record["provenance"]
    assert provenance["fieldbench_version"] and provenance["device"] and provenance["date"]
    assert len(record["dataset"]["content_sha256"]) == 64
    assert record["dataset"]["content_sha256"] == record["dataset"]["registry_content_sha256"]
    assert verify_records(records, allow_local=True) == []


def test_existing_records_are_never_overwritten_silently(records):
    path = record_path(records, "exact", DATASET)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already on the board"):
        submit("exact", "exact", datasets=[DATASET], directory=records)
    assert path.read_bytes() == before


@pytest.mark.parametrize("tamper, message", [
    (lambda r: r["metrics"]["test_multi"].__setitem__("phi_error", -1.0), "schema"),
    (lambda r: r["dataset"].__setitem__("content_sha256", "0" * 64), "does not match the registry"),
    (lambda r: r.__setitem__("record_version", 99), "schema"),
    (lambda r: r["model"].pop("parameters"), "schema"),
])
def test_verify_catches_tampered_records(records, tmp_path, tamper, message):
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    path = record_path(copy, "exact", DATASET)
    record = json.loads(path.read_text())
    tamper(record)
    path.write_text(json.dumps(record))
    problems = verify_records(copy, allow_local=True)
    assert problems and any(message in str(p) for p in problems), problems


def _forge(record: dict) -> dict:
    """What an adversary who knows the digest rule does after an edit: stamp a matching digest."""
    record["record_sha256"] = record_digest(record)
    return record


def test_verify_catches_duplicates_and_rescoring_mismatches(records, tmp_path):
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    shutil.copy(record_path(copy, "exact", DATASET), copy / "exact-again.json")
    assert any("duplicate" in str(p) for p in verify_records(copy, allow_local=True))
    (copy / "exact-again.json").unlink()
    path = record_path(copy, "exact", DATASET)
    record = json.loads(path.read_text())
    record["metrics"]["test_single"]["phi_error"] = 0.5  # plausible, but not what the model scores
    path.write_text(json.dumps(record))
    assert any("content digest" in str(p) for p in verify_records(copy, allow_local=True))  # an edit by hand
    path.write_text(json.dumps(_forge(record)))
    assert verify_records(copy, allow_local=True) == []  # a forged digest passes the plain check ...
    rescored = verify_records(copy, rescore=True, allow_local=True)
    assert any("rescoring test_single/phi_error" in str(p) for p in rescored)  # ... not this
    # A pull request's check rescores the records it adds or changes (only=...), and checks the rest.
    assert verify_records(copy, rescore=True, only=[], allow_local=True) == []
    problems = verify_records(copy, rescore=True, only=[path], allow_local=True)
    assert any("rescoring test_single/phi_error" in str(p) for p in problems), problems
    with pytest.raises(ValueError, match=r"not a record file in .*elsewhere.json; name files of that folder"):
        verify_records(copy, rescore=True, only=[tmp_path / "elsewhere.json"], allow_local=True)
    from typer.testing import CliRunner

    from fieldbench.cli import app

    result = CliRunner().invoke(app, ["leaderboard", "--records", str(copy), "verify", "--rescore",
                                      "--only", str(path)])
    assert result.exit_code == 1 and "rescoring test_single/phi_error" in result.output, result.output


@pytest.mark.parametrize("edit", [
    lambda r: r["metrics"]["test_multi"].__setitem__("phi_error", 0.5),
    lambda r: r["metrics"]["test_overlap"]["inside"].__setitem__("phi_error", 1e-5),
    lambda r: r["metrics"]["test_single"]["per_sample"]["phi"].__setitem__("p90", 1e-5),
    lambda r: r["speed"].__setitem__("eval_us_per_point", r["speed"]["eval_us_per_point"] / 10),
    lambda r: r["speed"]["device"].__setitem__("label", "NVIDIA H100 (gpu)"),
    lambda r: r["provenance"].__setitem__("git_commit", "0" * 40),
    lambda r: r["provenance"].__setitem__("date", "2020-01-01T00:00:00+00:00"),
    lambda r: r["model"].__setitem__("harmonic", False),
], ids=["metric", "inside", "p90", "speed", "device", "commit", "date", "flag"])
def test_plain_verify_catches_any_edit_by_hand(records, tmp_path, edit):
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    path = record_path(copy, "exact", DATASET)
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record, indent=4))  # re-indented too: the digest is of the content
    problems = [str(p) for p in verify_records(copy, allow_local=True)]
    assert len([p for p in problems if "content digest" in p]) == 1, problems
    assert all(p.startswith(str(path)) and "\n" not in p for p in problems)


def test_flags_and_parameter_count_are_re_derived_from_the_checkpoint(learned, tmp_path):
    directory = tmp_path / "repo" / "leaderboard" / "records"
    shutil.copytree(learned.parents[2], tmp_path / "repo", dirs_exist_ok=True)
    path = directory / learned.name
    original = json.loads(path.read_text())
    for key, value in (("additive", False), ("harmonic", False), ("parameters", original["model"]["parameters"] - 1),
                       ("trained_on", {"name": "prisms2d"}),
                       ("hyperparameters", original["model"]["hyperparameters"] | {"length_scale": 1.0})):
        record = json.loads(json.dumps(original))
        record["model"][key] = value
        path.write_text(json.dumps(_forge(record)))  # even with a forged digest
        problems = [str(p) for p in verify_records(directory, allow_local=True)]
        assert any(f"model {key} is {value!r} in the record" in p for p in problems), (key, problems)
    path.write_text(json.dumps(original))
    assert verify_records(directory, allow_local=True) == []


def test_rescore_catches_forged_speed_and_inside_figures(records, tmp_path):
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    path = record_path(copy, "exact", DATASET)
    record = json.loads(path.read_text())
    record["speed"]["eval_us_per_point"] /= 30  # far beyond TIMING_FACTOR, whatever the machine's load
    record["metrics"]["test_overlap"]["inside"]["points"] += 1
    path.write_text(json.dumps(_forge(record)))
    problems = [str(p) for p in verify_records(copy, rescore=True, allow_local=True)]
    assert any("re-timing gives" in p and "us/point" in p for p in problems), problems
    assert any("rescoring test_overlap/inside/points: the record says" in p for p in problems), problems


def test_the_same_checkpoint_under_another_name_is_caught(learned, tmp_path):
    shutil.copytree(learned.parents[2], tmp_path / "repo")
    directory = tmp_path / "repo" / "leaderboard" / "records"
    record = json.loads((directory / learned.name).read_text())
    record["name"] = "linear-again"
    record_path(directory, "linear-again", DATASET).write_text(json.dumps(_forge(record)))
    problems = [str(p) for p in verify_records(directory, allow_local=True)]
    assert any("scores the same checkpoint as" in p for p in problems), problems


def test_an_old_record_names_the_command_that_upgrades_it(records, tmp_path):
    from typer.testing import CliRunner

    from fieldbench.cli import app

    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    path = record_path(copy, "exact", DATASET)
    current = json.loads(path.read_text())
    old = {k: v for k, v in current.items() if k not in ("speed", "record_sha256")} | {"record_version": 1}
    path.write_text(json.dumps(old))
    (problem,) = [str(p) for p in verify_records(copy, allow_local=True)]
    assert f"fieldbench leaderboard --records {copy} migrate" in problem
    # An old record edited before the migration is refused and left as it was ...
    edited = json.loads(json.dumps(old))
    edited["metrics"]["test_multi"]["phi_error"] = 0.5
    path.write_text(json.dumps(edited))
    result = CliRunner().invoke(app, ["leaderboard", "--records", str(copy), "migrate"])
    assert result.exit_code == 1 and "rescoring test_multi/phi_error" in result.output, result.output
    assert json.loads(path.read_text()) == edited
    # ... one that every number of is reproduced is upgraded: timed warm, digest stamped.
    path.write_text(json.dumps(old))
    result = CliRunner().invoke(app, ["leaderboard", "--records", str(copy), "migrate"])
    assert result.exit_code == 0 and "upgraded 1 record" in result.output, result.output
    upgraded = json.loads(path.read_text())
    assert upgraded["record_version"] == 3 and upgraded["record_sha256"] == record_digest(upgraded)
    assert upgraded["speed"]["eval_us_per_point"] > 0 and upgraded["metrics"] == old["metrics"]
    assert verify_records(copy, allow_local=True) == []


def test_a_version_2_record_gains_its_validation_score_and_metadata_only_if_intact(seeded, tmp_path):
    """Version 2 had no validation split: the migration checks the record (its digest too), scores val
    for every seed, adds submission metadata by record name, and stamps the new digest."""
    from typer.testing import CliRunner

    from fieldbench.cli import app

    repository = tmp_path / "repo"
    shutil.copytree(seeded.parents[2], repository)
    path = repository / "leaderboard" / "records" / seeded.name
    current = json.loads(path.read_text())
    old = json.loads(json.dumps(current))
    del old["metrics"]["val"], old["seeds"]["metrics"]["val"]
    old["record_version"] = 2
    path.write_text(json.dumps(_forge(old)))  # what version 2 wrote: its own digest
    (problem,) = [str(p) for p in verify_records(path.parent, allow_local=True)]
    assert "record version 2 has no validation-split score" in problem and "migrate" in problem
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"linear": {"authors": ["A. Tester"], "description": "An untrained plane."}}))
    command = ["leaderboard", "--records", str(path.parent), "migrate", "--metadata", str(metadata)]
    edited = json.loads(json.dumps(old))
    edited["metrics"]["test_single"]["phi_error"] = 0.5  # an edit by hand: the digest no longer matches
    path.write_text(json.dumps(edited))
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1 and "content digest" in result.output, result.output
    assert json.loads(path.read_text()) == edited  # refused, left as it was
    path.write_text(json.dumps(old))
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0 and "upgraded 1 record" in result.output, result.output
    upgraded = json.loads(path.read_text())
    assert upgraded["record_version"] == 3 and upgraded["record_sha256"] == record_digest(upgraded)
    assert upgraded["submission"] == {"authors": ["A. Tester"], "description": "An untrained plane."}
    val, fresh = upgraded["seeds"]["metrics"]["val"], current["seeds"]["metrics"]["val"]
    assert val["phi_error"]["values"] == pytest.approx(fresh["phi_error"]["values"], rel=1e-9)
    assert len(val["phi_error"]["values"]) == 2 and upgraded["metrics"]["test_single"] == old["metrics"]["test_single"]
    assert verify_records(path.parent, allow_local=True, rescore=True) == []


def test_damaged_records_are_named_with_the_fix(records, tmp_path):
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    broken = copy / "broken__circles2d-mini.json"
    broken.write_text('{"name": ')
    problems = [str(p) for p in verify_records(copy, allow_local=True)]
    assert any(p.startswith(f"{broken}: is damaged (not valid JSON") and "resubmit" in p for p in problems), problems
    with pytest.raises(ValueError, match=r"broken__circles2d-mini.json is damaged \(not valid JSON"):
        load_records(copy)


def test_a_schema_error_in_submit_names_the_file_and_field(tmp_path):
    with pytest.raises(ValueError, match=r"exact__circles2d-mini.json: the record would not match the record schema, "
                                         r"field scaling: "):
        submit("exact", "exact", datasets=[DATASET], directory=tmp_path, limit=1, splits=["test_single"],
               scaling=[1.0])
    assert not any(tmp_path.iterdir())


def test_the_scaling_chart_draws_each_run_once_and_skips_unmeasured_sizes():
    """The board's runtime-scaling chart is drawn from the records' stored rows: two records holding
    one run's rows draw each curve once, a size that was not measured is left out, one colour per
    method; no rows, no chart."""
    from fieldbench.leaderboard._charts import Colours, scaling_chart

    rows = [{"method": method, "phase": phase, "sweep": "M", "points": "outside", "M": m, "N": m,
             "seconds": 1e-9 * m * m, "compile_seconds": 0.5, "repeats": 2, "status": "ok"}
            for method in ("exact", "fmm") for m in (100, 1000) for phase in ("encode", "evaluate")]
    rows.append(dict(rows[-1], M=10_000, N=10_000, seconds=None, compile_seconds=None, repeats=0,
                     status="skipped (predicted 100 s > budget 30 s)"))
    shared = {"rows": rows, "slopes": [], "environment": {"device": "a CPU", "backend": "cpu"},
              "settings": {"family": "disc", "n_fixed": None}, "seconds": 1.0}
    from fieldbench.evaluation import ScalingResult

    runs = [ScalingResult.from_dict(shared), ScalingResult.from_dict(shared)]  # two records, one run
    fragment = scaling_chart(runs, Colours())
    figure = json.loads(fragment[fragment.index("[{"):fragment.index("}],") + 2])  # the traces plotly draws
    assert sorted(trace["name"] for trace in figure) == ["exact encode (outside)", "exact evaluate (outside)",
                                                       "fmm encode (outside)", "fmm evaluate (outside)"]
    assert all(trace["x"] == [100, 1000] for trace in figure)  # the unmeasured 10,000 is not drawn
    colours = {trace["legendgroup"]: trace["line"]["color"] for trace in figure}
    assert len(set(colours.values())) == 2 and 'id="chart-scaling"' in fragment and "timed on a CPU" in fragment
    assert scaling_chart([], Colours()) is None


def test_the_frontier_compares_every_method_at_the_runs_largest_size():
    """The accuracy-cost frontier of one scaling run: at its largest M = N, encode + evaluate per
    (source + point) with each record's error, the ratio to the corrected FMM in the same run, the
    run's source family, a time from one over-budget first call said so, and the methods that did
    not get there named, not extrapolated, as are records the run lacks."""
    from fieldbench.evaluation import ScalingResult
    from fieldbench.leaderboard._render import _frontier_table

    seconds = {("fmm", "encode"): 1e-5, ("fmm", "evaluate"): 12.0, ("fast", "encode"): 4.0,
               ("fast", "evaluate"): 3.0, ("slow", "encode"): 30.0, ("slow", "evaluate"): 20.0}
    rows = [{"method": method, "phase": phase, "sweep": "M", "points": "outside", "M": m, "N": m,
             "seconds": seconds[method, phase] * m / 1e6, "compile_seconds": 0.5, "repeats": 2, "status": "ok"}
            for method in ("fmm", "fast", "slow") for phase in ("encode", "evaluate") for m in (10**5, 10**6)
            if not (method == "slow" and m == 10**6)]
    for row in rows:
        if row["M"] == 10**6 and row["method"] == "fmm":  # its first call ran past the budget: the only one
            row.update(status="over budget", **({"repeats": 0, "compile_seconds": row["seconds"]}
                                                if row["phase"] == "evaluate" else {}))
        if row["M"] == 10**6 and row["method"] == "fast" and row["phase"] == "evaluate":  # warm: one call
            row.update(status="over budget", repeats=1, compile_seconds=row["seconds"])
    run = ScalingResult.from_dict({"rows": rows, "slopes": [], "environment": {"device": "a CPU"},
                                   "settings": {"family": "prism"}, "seconds": 1.0})
    lines, table, text, _ = _frontier_table(run, {"fmm": 1e-3, "fast": 4.4, "untimed": 0.9})
    (fast,) = [line for line in lines if line.startswith("| fast |")]
    assert "| 7 |" in fast and "| 3.5 |" in fast and "| 4.4 |" in fast and "1.71x faster" in fast  # 12 s / 7 s
    assert "M = N = 1,000,000 prism sources" in text and "past the run's time budget): slow" in text
    assert ("Timed by its first call alone (it ran past the run's time budget: an upper bound, compilation "
            "included if any): fast (outside), fmm (outside).") in text
    assert "Records not in this run (rerun the command with their checkpoints to add them): untimed." in text
    assert not any(line.startswith("| slow |") for line in lines) and "<table" in table


def test_fig5a_draws_a_datasets_runs_on_one_and_two_cores_apart(tmp_path):
    """A dataset's scaling runs (``scaling/DATASET/scaling.json`` and ``scaling/DATASET/*/scaling.json``,
    the same sweep on more cores) are drawn as separate curves named by their thread counts (not
    merged as the records' shared rows are), and tabulated side by side at the largest size with the
    speed-up; the frontier is read from the first run only."""
    from fieldbench.leaderboard._charts import Colours, scaling_chart
    from fieldbench.leaderboard._render import _parallel_table, _scaling_runs

    def run(threads, speedup):
        rows = [{"method": method, "phase": phase, "sweep": "M", "points": "outside", "M": m, "N": m,
                 "seconds": (2.0 if method == "fmm" else 1.0) * m / 1e6 / speedup[method], "compile_seconds": 0.5,
                 "repeats": 2, "status": "ok"}
                for method in ("fmm", "fast") for phase in ("encode", "evaluate") for m in (10**5, 10**6)]
        return {"rows": rows, "slopes": [], "environment": {"device": f"a CPU, {threads} threads", "threads": threads},
                "settings": {}, "seconds": 1.0}

    folder = tmp_path / "scaling" / "circles2d"
    (folder / "2-cores").mkdir(parents=True)
    (folder / "scaling.json").write_text(json.dumps(run(1, {"fmm": 1.0, "fast": 1.0})))
    (folder / "2-cores" / "scaling.json").write_text(json.dumps(run(2, {"fmm": 1.6, "fast": 2.0})))
    runs = _scaling_runs(tmp_path / "scaling")["circles2d"]
    assert [r.environment["threads"] for r in runs] == [1, 2]
    fragment = scaling_chart(runs, Colours(), separate_runs=True)
    figure = json.loads(fragment[fragment.index("[{"):fragment.index("}],") + 2])
    names = sorted(trace["name"] for trace in figure)
    assert len(names) == 8 and {"fast evaluate (outside), 2 threads", "fmm encode (outside), 1 thread"} <= set(names)
    widths = {trace["name"]: trace["line"]["width"] for trace in figure}
    assert widths["fast evaluate (outside), 2 threads"] > widths["fast evaluate (outside), 1 thread"]
    lines, table, text = _parallel_table(runs)
    (fmm,) = [line for line in lines if line.startswith("| fmm |")]
    (fast,) = [line for line in lines if line.startswith("| fast |")]
    assert "| 4 | 2.5 | 1.60x |" in fmm and "| 2 | 1 | 2.00x |" in fast  # seconds at M = N = 1e6, both phases
    assert "1 thread and on 2 threads" in text and "<table" in table
    (folder / "2-cores" / "scaling.json").write_text("{\"rows\": [")  # cut short
    with pytest.raises(ValueError, match="2-cores.*is not a scaling result"):
        _scaling_runs(tmp_path / "scaling")


def test_the_page_is_one_file_and_renders_the_same_bytes_twice(records, tmp_path):
    # local_run: the mini records are local results, drawn in the tables and charts as the main job does
    first, second = render(records, tmp_path / "a", local_run=True), render(records, tmp_path / "b", local_run=True)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["README.md", "index.html"]
    page = first["html"].read_text()
    from html.parser import HTMLParser

    class Links(HTMLParser):
        found: list = []

        def handle_starttag(self, tag, attrs):
            self.found += [(tag, key, value) for key, value in attrs if key in ("src", "href")] + \
                [(tag, "tag", "") for _ in [0] if tag in ("img", "link", "iframe")]

    parser = Links()
    parser.feed(page)
    # Nothing the page would fetch: no image, stylesheet or script files; links are in-page anchors.
    assert parser.found and all(tag == "a" and key == "href" and value.startswith("#") for tag, key, value in
                                parser.found), parser.found
    assert page == second["html"].read_text() and first["readme"].read_text() == second["readme"].read_text()
    assert page.count('class="plotly-graph-div"') >= 2  # error by distance, accuracy against speed


def test_the_committed_board_is_rendered_from_the_committed_records(tmp_path):
    """leaderboard/README.md and index.html are what `fieldbench leaderboard` renders from the
    committed records: a record added or changed without re-rendering fails here."""
    board = Path(__file__).resolve().parents[1] / "leaderboard"
    paths = render(board / "records", tmp_path)
    assert paths["readme"].read_text() == (board / "README.md").read_text(), "run `fieldbench leaderboard`"
    def without_plotly_js(page: str) -> str:  # the first script is whichever plotly is installed; the rest is ours
        return page.split("<script>", 1)[0] + page.split("</script>", 1)[-1]

    committed = (board / "index.html").read_text()
    assert "plotly.js v" in committed[:committed.index("</head>")], "the committed page inlines plotly.js"
    assert without_plotly_js(paths["html"].read_text()) == without_plotly_js(committed), "run `fieldbench leaderboard`"


def _browser():
    """Debian's chromium and chromedriver driven by selenium; a skip (a failure with CI=true) when absent."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = "chromium" if browser is None else "chromedriver (Debian's chromium-driver)"
        if in_ci():  # CI must run the browser test, never skip it silently
            pytest.fail(f"{missing} is not installed, and CI=true requires the browser test: ./setup.sh test "
                        "installs it where apt-get is available")
        pytest.skip(f"{missing} is not installed (./setup.sh test installs it where apt-get is available)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1800"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_page_works_in_a_real_browser(tmp_path):
    """Headless chromium on the board rendered from the committed records, as a fresh clone renders it:
    the page loads without console errors, every chart draws its SVG, clicking a column header sorts
    the rows by it (again: the other way), and the screenshot is not blank."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    committed = Path(__file__).resolve().parents[1] / "leaderboard" / "records"
    paths = render(committed, tmp_path / "site")
    driver = _browser()
    try:
        driver.get(paths["html"].resolve().as_uri())
        charts = driver.find_elements(By.CSS_SELECTOR, "div.plotly-graph-div")
        assert len(charts) >= 2
        WebDriverWait(driver, 60).until(
            lambda d: all(c.find_elements(By.CSS_SELECTOR, "svg.main-svg") for c in charts))
        assert all(c.find_elements(By.CSS_SELECTOR, "g.trace") for c in charts)  # data drawn, not empty axes
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        table = driver.find_element(By.CSS_SELECTOR, "table.ranked")
        headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "th")]
        column = headers.index("eval us/point")

        def values():
            """The column's values top to bottom; the paper's reference rows have none (blank)."""
            cells = [row.find_elements(By.TAG_NAME, "td")[column].get_attribute("data-value")
                     for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
            blanks = [index for index, cell in enumerate(cells) if cell == ""]
            assert blanks == list(range(len(cells) - len(blanks), len(cells))), cells  # blanks stay last
            return [float(cell) for cell in cells if cell != ""]

        before = values()
        assert len(before) >= 3
        header = table.find_elements(By.CSS_SELECTOR, "th")[column]
        header.click()
        assert values() == sorted(before)
        header.click()
        assert values() == sorted(before, reverse=True)
        names = [a.text for a in table.find_elements(By.CSS_SELECTOR, "tbody td a")]
        first = table.find_element(By.XPATH, "./ancestor::section").get_attribute("id")
        assert sorted(names) == sorted(r["name"] for r in load_records(committed) if r["dataset"]["name"] == first)
        shot = tmp_path / "page.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert shot.read_bytes().startswith(PNG_SIGNATURE) and np.std(pixels) > 0.05  # a rendered page, not a blank one


def test_committed_records_rescore(full_circles2d):
    """What the pull-request workflow runs on a changed record, on committed ones: every record checked
    as official, and a learned baseline (3 seeds) and the exact reference rescored on the rebuilt full
    dataset, every metric, seed value and timing re-derived. (Rescoring all of them takes ~20 minutes:
    the workflow rescores what a pull request changes.)"""
    committed = Path(__file__).resolve().parents[1] / "leaderboard" / "records"
    chosen = [record_path(committed, name, full_circles2d) for name in ("linear", "exact")]
    cwd = os.getcwd()
    os.chdir(committed.parents[1])
    try:
        assert verify_records(committed, rescore=True, only=chosen) == []
    finally:
        os.chdir(cwd)


def test_committed_records_are_valid():
    """CI's gate: every record in leaderboard/records validates (schema, registry checksums,
    checkpoint hashes, no duplicates, metrics in range)."""
    committed = Path(__file__).resolve().parents[1] / "leaderboard" / "records"
    if not any(committed.glob("*.json")):
        pytest.skip("no committed records yet")

    cwd = os.getcwd()
    os.chdir(committed.parents[1])  # records name checkpoints relative to the repository root
    try:
        assert verify_records(committed) == []
    finally:
        os.chdir(cwd)


def test_a_record_of_several_seeds_holds_mean_std_and_values(seeded, tmp_path):
    from fieldbench.evaluation import evaluate
    from fieldbench.models import load_checkpoint

    repository = tmp_path / "repo"
    shutil.copytree(seeded.parents[2], repository)
    path = repository / "leaderboard" / "records" / seeded.name
    paths = [repository / "checkpoints" / f"linear-seed{seed}.eqx" for seed in range(2)]
    record = json.loads(path.read_text())
    seeds = record["seeds"]
    assert seeds["count"] == 2
    values = [evaluate(load_checkpoint(p)[0], DATASET, "test_single").phi_error for p in paths]
    summary = seeds["metrics"]["test_single"]["phi_error"]
    assert summary["values"] == pytest.approx(values, rel=1e-9)
    assert summary["mean"] == pytest.approx(np.mean(values)) and summary["std"] == pytest.approx(np.std(values, ddof=1))
    assert record["metrics"]["test_single"]["phi_error"] == pytest.approx(values[0], rel=1e-9)
    # Paths are relative to the records' repository, so a moved clone still verifies ...
    assert [s["path"] for s in seeds["checkpoints"]] == ["checkpoints/linear-seed0.eqx", "checkpoints/linear-seed1.eqx"]
    assert record["model"]["checkpoint"] == "checkpoints/linear-seed0.eqx"
    moved = tmp_path / "moved"
    shutil.move(repository, moved)
    assert verify_records(moved / "leaderboard" / "records", allow_local=True) == []
    # ... and a changed seed checkpoint is caught.
    seed1 = moved / "checkpoints" / "linear-seed1.eqx"
    seed1.write_bytes(seed1.read_bytes()[:-1] + bytes([seed1.read_bytes()[-1] ^ 1]))
    problems = verify_records(moved / "leaderboard" / "records", allow_local=True)
    assert any("seed checkpoint checkpoints/linear-seed1.eqx" in str(p) for p in problems), problems


def test_the_board_shows_the_rank_l_ceiling_next_to_the_records(records, tmp_path):
    from fieldbench.evaluation import ceiling

    result = ceiling(DATASET, "test_multi", ranks=(4, 16), points=128, train_sources=48, samples=8)
    board = tmp_path / "board"
    shutil.copytree(records, board / "records")
    (board / "ceiling").mkdir()
    (board / "ceiling" / f"{DATASET}.json").write_text(json.dumps([result.as_dict()]))
    paths = render(board / "records", board, local_run=True)
    readme, page = paths["readme"].read_text(), paths["html"].read_text()
    for rank, error, l2 in zip(result.ranks, result.phi_error, result.phi_relative_l2):
        assert f"| {rank} | {error:.3g} | {l2:.3g} |" in readme
    assert "rank-L ceiling" in page
    (board / "ceiling" / f"{DATASET}.json").write_text("{broken")
    with pytest.raises(ValueError, match="rerun `fieldbench ceiling`"):
        render(board / "records", board, local_run=True)


def test_the_board_shows_the_warm_speed_and_compares_speeds_on_one_device_only(records, tmp_path):
    from fieldbench.leaderboard._render import _format

    board = tmp_path / "board"
    shutil.copytree(records, board / "records")
    record = json.loads(record_path(board / "records", "exact", DATASET).read_text())
    speed = record["speed"]
    assert speed["warmup_calls"] == 1 and speed["samples"] == 48 and speed["device"]["cpu_count"] >= 1
    paths = render(board / "records", board, local_run=True)
    readme, page = paths["readme"].read_text(), paths["html"].read_text()
    # The warm figure, never the evaluator's wall time (which includes compilation), and its device.
    assert f"| {_format(speed['eval_us_per_point'])} | {speed['device']['label']} |" in readme, readme
    assert f"accuracy against speed, timed on {speed['device']['label']}" in page
    assert "Left out of the speed chart" not in page
    # A record timed elsewhere is not drawn among them: the chart keeps the device most records
    # were timed on, and the page names what it left out.
    other = json.loads(json.dumps(record)) | {"name": "exact-gpu"}
    other["speed"]["device"]["label"] = "NVIDIA H200 (gpu), host with 16 CPUs"
    record_path(board / "records", "exact-gpu", DATASET).write_text(json.dumps(other))
    record_path(board / "records", "exact-gpu2", DATASET).write_text(json.dumps(other | {"name": "exact-gpu2"}))
    page = render(board / "records", board, local_run=True)["html"].read_text()
    assert "accuracy against speed, timed on NVIDIA H200 (gpu), host with 16 CPUs" in page
    assert "Left out of the speed chart (timed on another device than the one most records were timed on): " \
           "exact." in page


def test_a_bad_name_is_refused_before_any_work(tmp_path):
    for name in ("../evil", "a/b", "", "x" * 81, "a..b"):
        with pytest.raises(ValueError, match="is not allowed"):
            submit("exact", name, datasets=[DATASET], directory=tmp_path, limit=1)
    assert not any(tmp_path.iterdir())


def test_names_differing_only_in_case_are_duplicates(records, tmp_path):
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    record = json.loads(record_path(copy, "exact", DATASET).read_text())
    record["name"] = "EXACT"
    record_path(copy, "EXACT", DATASET).write_text(json.dumps(record))
    problems = verify_records(copy, allow_local=True)
    assert any("same name, up to case" in str(p) for p in problems), problems


def test_rescore_checks_every_record_even_after_a_problem_elsewhere(records, tmp_path):
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    broken = json.loads(record_path(copy, "exact", DATASET).read_text())
    broken["name"] = "broken"
    broken["record_version"] = 99  # a schema problem in one record ...
    record_path(copy, "broken", DATASET).write_text(json.dumps(broken))
    edited = json.loads(record_path(copy, "exact", DATASET).read_text())
    edited["metrics"]["test_multi"]["phi_error"] = 1.0  # ... and an edited metric in another
    record_path(copy, "exact", DATASET).write_text(json.dumps(edited))
    problems = [str(p) for p in verify_records(copy, rescore=True, allow_local=True)]
    assert any("broken" in p and "schema" in p for p in problems)
    assert any("rescoring test_multi/phi_error: the record says 1.0" in p for p in problems), problems


def test_the_verify_command_reads_the_groups_records_folder(records, tmp_path):
    from typer.testing import CliRunner

    from fieldbench.cli import app

    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    record_path(copy, "exact", DATASET).write_text("{}")
    result = CliRunner().invoke(app, ["leaderboard", "--records", str(copy), "verify"])
    assert result.exit_code == 1 and "schema" in result.output
    assert CliRunner().invoke(app, ["leaderboard", "--records", str(records), "verify", "--allow-local"]).exit_code == 0


#: Submission metadata an official record of a fieldbench model needs (authors, description).
META = {"authors": ["A. Tester"], "description": "The exact solver, as a test submits it."}


def test_local_results_are_refused_as_official_and_listed_apart(full_circles2d, tmp_path):
    """The official board holds full-split, multi-seed records with metadata; each rule, broken alone,
    makes a local result that verify refuses (naming the rule and its fix) and the board lists apart."""
    from typer.testing import CliRunner

    from fieldbench.cli import app
    from fieldbench.models import build_model, save_checkpoint

    board = tmp_path / "repo" / "leaderboard" / "records"
    one = ["test_single"]
    (official,) = submit("exact", "exact", datasets=[full_circles2d], directory=board, splits=one, submission=META)
    submit("exact", "exact-quick", datasets=[full_circles2d], directory=board, splits=one, limit=4, submission=META)
    submit("exact", "exact-mini", datasets=[DATASET], directory=board, splits=one, submission=META)
    submit("exact", "exact-anonymous", datasets=[full_circles2d], directory=board, splits=one)
    model, hyperparameters = build_model("linear", length_scale=3.0, seed=0)
    checkpoint = save_checkpoint(tmp_path / "repo" / "checkpoints" / "linear.eqx", model,
                                 {"model": "linear", "hyperparameters": hyperparameters})
    submit("linear", "linear-one-seed", checkpoint=checkpoint, datasets=[full_circles2d], directory=board,
           splits=one, submission=META)
    expected = {"exact-quick": "scored on only the first 4 samples of each split",
                "exact-mini": f"scored on {DATASET}, a mini dataset for tests (submit on circles2d)",
                "exact-anonymous": "no authors, description in its submission metadata (submit with --author, "
                                   "--description)",
                "linear-one-seed": "1 seed(s) of a learned model (submit >= 3 checkpoints"}
    problems = [str(p) for p in verify_records(board)]
    assert len(problems) == len(expected), problems
    for name, reason in expected.items():
        (line,) = [p for p in problems if f"{name}__" in p]
        assert "a local result, not an official one" in line and reason in line and "\n" not in line, line
        assert "allow_local=True" in line
    assert not any(str(official) in p for p in problems)  # full splits, metadata, no checkpoint to seed
    assert verify_records(board, allow_local=True) == []
    result = CliRunner().invoke(app, ["leaderboard", "--records", str(board), "verify"])
    assert result.exit_code == 1 and "--allow-local" in result.output, result.output  # the opt-in, named
    result = CliRunner().invoke(app, ["leaderboard", "--records", str(board), "verify", "--allow-local"])
    assert result.exit_code == 0, result.output
    # The board: the official table holds the official record only; the others are apart, each with why.
    paths = render(board, tmp_path / "site")
    readme, page = paths["readme"].read_text(), paths["html"].read_text()
    main, local = readme.split("## Local results")
    assert "| 1 | exact |" in main and not any(name in main for name in expected)
    for name, reason in expected.items():
        (row,) = [line for line in local.splitlines() if line.startswith(f"| {name} |")]
        assert reason.split(" (")[0] in row
    main_section = page[page.index('<section id="circles2d">'):page.index('<section id="local">')]
    assert not any(name in main_section for name in expected)
    assert "1 record(s), and 4 local result(s) listed apart" in page


def _refuse_work(monkeypatch):
    """Make any loading or evaluation fail the test: a refusal must come before them."""
    from fieldbench.leaderboard import _submit

    def work(*args, **kwargs):
        raise AssertionError("submit started work before refusing the name")

    for attribute in ("load_model", "evaluate", "open_dataset"):
        monkeypatch.setattr(_submit, attribute, work)


@pytest.mark.parametrize("replace", [False, True])
def test_a_name_differing_only_in_case_is_refused_before_any_work(records, tmp_path, monkeypatch, replace):
    from fieldbench.leaderboard._record import check_record_name

    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    before = sorted(p.name for p in copy.iterdir())
    _refuse_work(monkeypatch)
    for dataset in (DATASET, "prisms2d-mini"):  # one model, one spelling, on every dataset
        with pytest.raises(ValueError, match=r"leaderboard name 'EXACT' differs only in case from the existing "
                                             r"record .*exact__circles2d-mini.json: use 'exact'"):
            submit("exact", "EXACT", datasets=[dataset], directory=copy, replace=replace)
    assert sorted(p.name for p in copy.iterdir()) == before
    check_record_name("exact", copy)  # the same name is not a clash (replace decides about it)
    check_record_name("EXACT")  # without a folder: the form only


def test_the_submit_command_refuses_a_case_clash_before_its_scaling_run(records, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from fieldbench import evaluation
    from fieldbench.cli import app

    copy = tmp_path / "records"
    shutil.copytree(records, copy)

    def scaling(*args, **kwargs):
        raise AssertionError("the scaling run started before the name was refused")

    monkeypatch.setattr(evaluation, "scaling", scaling)
    result = CliRunner().invoke(app, ["submit", "exact", "--name", "EXACT", "--dataset", DATASET,
                                      "--records", str(copy)])
    assert result.exit_code == 1 and "differs only in case" in result.output, result.output


def test_an_existing_record_on_any_dataset_is_refused_before_any_evaluation(records, tmp_path, monkeypatch):
    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    from fieldbench.leaderboard import _submit

    def work(*args, **kwargs):
        raise AssertionError("submit evaluated before refusing an existing record")

    monkeypatch.setattr(_submit, "evaluate", work)
    with pytest.raises(FileExistsError, match="exact__circles2d-mini.json exists"):
        submit("exact", "exact", datasets=["prisms2d-mini", DATASET], directory=copy)
    assert sorted(p.name for p in copy.iterdir()) == ["exact__circles2d-mini.json"]  # nothing written


def test_rescore_catches_a_forged_seed_value(seeded, tmp_path):
    repository = tmp_path / "repo"
    shutil.copytree(seeded.parents[2], repository)
    directory = repository / "leaderboard" / "records"
    path = directory / seeded.name
    record = json.loads(path.read_text())
    summary = record["seeds"]["metrics"]["test_single"]["phi_error"]
    summary["values"][1] *= 0.5  # the second seed "scored" half its error ...
    summary["mean"], summary["std"] = float(np.mean(summary["values"])), float(np.std(summary["values"], ddof=1))
    path.write_text(json.dumps(_forge(record)))  # ... with a consistent summary and digest
    assert verify_records(directory, allow_local=True) == []  # the plain check cannot see it ...
    problems = [str(p) for p in verify_records(directory, rescore=True, allow_local=True)]
    assert any("rescoring seed 1 (checkpoints/linear-seed1.eqx) on test_single gives phi_error" in p
               for p in problems), problems  # ... the rescore re-evaluates every seed


def test_rescore_catches_a_forged_scaling_row(tmp_path):
    from fieldbench.evaluation import scaling, scaling_predictors
    from fieldbench.leaderboard._benchmark import scaling_figures
    from fieldbench.leaderboard._rescore import RETIME_MAX_SECONDS, RETIME_MIN_SECONDS, TIMING_FACTOR

    figures = scaling_figures(scaling(scaling_predictors(["exact"]), sizes_m=(1e3, 1e4), time_budget=10.0,
                                      repeats=1))
    (row,) = [r for r in figures["rows"] if r["phase"] == "evaluate" and r["M"] == 10_000]
    # 1e8 pairs: far above the floor under which short rows are compared loosely, within the re-timed range.
    assert 10 * TIMING_FACTOR * RETIME_MIN_SECONDS < row["seconds"] <= RETIME_MAX_SECONDS
    directory = tmp_path / "records"
    (path,) = submit("exact", "exact", datasets=[DATASET], directory=directory, splits=["test_single"],
                     scaling=figures)
    record = json.loads(path.read_text())
    (forged,) = [r for r in record["scaling"]["rows"] if r["phase"] == "evaluate" and r["M"] == 10_000]
    forged["seconds"] /= 1000  # 1000x faster: below RETIME_MIN_SECONDS, where a row used to escape re-timing
    path.write_text(json.dumps(_forge(record)))
    assert verify_records(directory, allow_local=True) == []
    problems = [str(p) for p in verify_records(directory, rescore=True, allow_local=True)]
    assert any("re-timing scaling exact evaluate (outside, M=10,000, N=10,000)" in p for p in problems), problems


def test_a_local_record_is_migrated_but_stays_local(tmp_path):
    from fieldbench.leaderboard import migrate_records

    directory = tmp_path / "records"
    (path,) = submit("exact", "exact-quick", datasets=[DATASET], directory=directory, limit=4, splits=["test_single"])
    current = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in current.items() if k not in ("speed", "record_sha256")}
                               | {"record_version": 1}))
    written, problems = migrate_records(directory)
    assert written == [path] and problems == []  # the upgrade changes the format ...
    (problem,) = [str(p) for p in verify_records(directory)]
    assert "scored on only the first 4 samples" in problem  # ... not the standing


def test_a_record_keyed_by_the_old_split_names_still_verifies_and_reads_canonically(records, tmp_path):
    from fieldbench.leaderboard._record import write_record

    copy = tmp_path / "records"
    shutil.copytree(records, copy)
    path = record_path(copy, "exact", DATASET)
    record = json.loads(path.read_text())
    # As records written before layout version 2 hold them (sealed with these keys).
    record["metrics"] = {name.replace("_", "-"): values for name, values in record["metrics"].items()}
    record["speed"]["split"] = "test-multi"
    write_record(path, record)
    assert verify_records(copy, rescore=True, allow_local=True) == []  # a rescore evaluates test-multi as test_multi
    (loaded,) = load_records(copy)
    assert set(loaded["metrics"]) == {"test_single", "test_multi", "test_overlap", "val"}
    assert loaded["speed"]["split"] == "test_multi"
    assert json.loads(path.read_text())["metrics"].keys() == record["metrics"].keys()  # the file is not rewritten


def test_a_record_says_who_submitted_it_and_the_page_shows_it(records, tmp_path, monkeypatch):
    """submit --author/--contact/--code-url/--paper/--description: the record holds them (sealed by
    the digest), the page's details show them with links; a malformed value is refused before any
    evaluation, naming the field."""
    from typer.testing import CliRunner

    from fieldbench.cli import app

    board = tmp_path / "board"
    shutil.copytree(records, board / "records")
    common = ["submit", "exact", "--name", "exact-credited", "--dataset", DATASET, "--records",
              str(board / "records"), "--no-scaling", "--author", "A. Person", "--author", "B. Person",
              "--code-url", "https://example.org/code"]
    with monkeypatch.context() as patch:
        _refuse_work(patch)
        result = CliRunner().invoke(app, [*common, "--paper", "a paper I liked"])
    assert result.exit_code == 1 and "submission metadata: field paper" in result.output, result.output
    assert not record_path(board / "records", "exact-credited", DATASET).exists()
    result = CliRunner().invoke(app, [*common, "--paper", "10.1234/abcd.5678", "--contact", "a@example.org",
                                      "--description", "The exact sum, credited."])
    assert result.exit_code == 0, result.output
    record = json.loads(record_path(board / "records", "exact-credited", DATASET).read_text())
    assert record["submission"] == {"authors": ["A. Person", "B. Person"], "contact": "a@example.org",
                                    "code_url": "https://example.org/code", "paper": "10.1234/abcd.5678",
                                    "description": "The exact sum, credited."}
    assert verify_records(board / "records", allow_local=True) == []
    page = render(board / "records", board)["html"].read_text()
    assert "A. Person, B. Person" in page and '<a href="https://doi.org/10.1234/abcd.5678">' in page
    assert '<a href="https://example.org/code">' in page and "The exact sum, credited." in page


def test_a_checkpoint_published_by_url_is_downloaded_and_checked(tmp_path):
    """submit --checkpoint-url: the record holds each URL with the sha256 of the .eqx and its .json;
    verify downloads a checkpoint the clone lacks (from a real HTTP server), and refuses one that
    changed at its URL or cannot be reached, naming it."""
    from _helpers import flip_byte, serve

    from fieldbench.datasets import cache_root
    from fieldbench.models import build_model, save_checkpoint

    local, served = tmp_path / "runs", tmp_path / "served"
    seeds = []
    for seed in range(3):
        model, hyperparameters = build_model("linear", length_scale=3.0, seed=seed)
        seeds.append(save_checkpoint(local / f"linear-seed{seed}.eqx", model,
                                     {"model": "linear", "hyperparameters": hyperparameters}))
    shutil.copytree(local, served)
    records = tmp_path / "repo" / "leaderboard" / "records"
    with serve(served) as (url, hits):
        urls = [f"{url}/{path.name}" for path in seeds]
        with pytest.raises(ValueError, match="one --checkpoint-url per --checkpoint"):
            submit("linear", "linear", checkpoint=seeds, checkpoint_urls=urls[:2], datasets=[DATASET],
                   directory=records)
        (path,) = submit("linear", "linear", checkpoint=seeds, checkpoint_urls=urls, datasets=[DATASET],
                         directory=records, splits=["test_single"])
        record = json.loads(path.read_text())
        assert record["model"]["checkpoint_url"] == urls[0]
        assert [entry["url"] for entry in record["seeds"]["checkpoints"]] == urls
        from fieldbench._io import file_sha256
        assert record["model"]["checkpoint_metadata_sha256"] == file_sha256(seeds[0].with_suffix(".json"))
        cached = [cache_root() / "checkpoints" / "by-sha256" / entry["sha256"]
                  for entry in record["seeds"]["checkpoints"]]
        try:
            shutil.rmtree(local)  # the clone has no checkpoint: verify fetches each from its URL
            assert verify_records(records, allow_local=True, rescore=True) == []
            assert all(hits[f"/{p.name}"] == 1 and hits[f"/{p.with_suffix('.json').name}"] == 1 for p in seeds)
            assert verify_records(records, allow_local=True) == []  # cached: no second download
            assert all(hits[f"/{p.name}"] == 1 for p in seeds)
            shutil.rmtree(cached[1])
            flip_byte(served / seeds[1].name)  # the published file changed after the record was written
            (problem,) = [str(p) for p in verify_records(records, allow_local=True)]
            assert f"seed checkpoint {seeds[1]}" in problem and "is not the checkpoint the record names" in problem
            assert not (cached[1] / seeds[1].name).exists()  # the bad download was discarded
        finally:
            for folder in cached:
                shutil.rmtree(folder, ignore_errors=True)
    (problem, *_) = [str(p) for p in verify_records(records, allow_local=True)]  # the server is gone
    assert "could not download" in problem and urls[0] in problem


def test_a_users_own_model_goes_from_submit_to_a_rescored_record_on_a_clone(tmp_path, monkeypatch):
    """The route of leaderboard/CONTRIBUTING.md with a model class of the user's own (examples/my_model.py
    as leaderboard/models/my_model.py): three seed checkpoints, `fieldbench submit` with metadata, then
    on another clone of the repository `verify --rescore --only` passes; a model file changed after
    the submission (other numbers from the same checkpoints) is caught."""
    from typer.testing import CliRunner

    from fieldbench.cli import app
    from fieldbench.models import build_model, save_checkpoint

    repository = tmp_path / "repo"
    (repository / "leaderboard" / "models").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "examples" / "my_model.py",
                repository / "leaderboard" / "models" / "my_model.py")
    monkeypatch.chdir(repository)
    spec = "leaderboard/models/my_model.py:MyModel"
    checkpoints = []
    for seed in range(3):
        model, hyperparameters = build_model(spec, length_scale=3.0, seed=seed, n_centers=16)
        checkpoints.append(save_checkpoint(Path(f"leaderboard/checkpoints/rbf-seed{seed}.eqx"), model,
                                           {"model": spec, "hyperparameters": hyperparameters}))
    result = CliRunner().invoke(app, [
        "submit", spec, "--name", "my-rbf", "--dataset", DATASET, "--no-scaling",
        *[arg for path in checkpoints for arg in ("--checkpoint", str(path))],
        "--author", "A. Person", "--code-url", "https://example.org/rbf", "--description", "Gaussian bumps."])
    assert result.exit_code == 0, result.output
    record = f"leaderboard/records/my-rbf__{DATASET}.json"
    stored = json.loads(Path(record).read_text())
    assert stored["model"]["checkpoint"] == "leaderboard/checkpoints/rbf-seed0.eqx" and stored["seeds"]["count"] == 3
    clone = tmp_path / "clone"
    shutil.copytree(repository, clone)
    monkeypatch.chdir(clone)
    command = ["leaderboard", "verify", "--rescore", "--only", record, "--allow-local"]  # mini: a local result
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    model_file = clone / "leaderboard" / "models" / "my_model.py"
    code = model_file.read_text()
    assert "jnp.exp(-0.5 * squared" in code
    model_file.write_text(code.replace("jnp.exp(-0.5 * squared", "jnp.exp(-0.6 * squared"))  # other numbers
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1 and "rescoring" in result.output, result.output
