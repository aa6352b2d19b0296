"""The nightly asv workflow's report tools (.ci/asv_report.py), on a real asv history: a tiny project
whose benchmark gets slower at a known commit, measured by asv and published by `asv publish`."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("asv_report", ROOT / ".ci" / "asv_report.py")
asv_report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(asv_report)

REPOSITORY = "https://github.com/example/fieldbench"
#: The benchmark's code stays the same (asv drops results of an earlier benchmark version); what
#: it measures is read from a file the test changes between commits.
BENCHMARK = "import time\n\n\ndef time_step():\n    time.sleep(float(open({!r}).read()))\n"


def _run(args, cwd, env):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_links_point_at_the_repository_and_keep_the_comments(tmp_path):
    config = tmp_path / "asv.conf.json"
    config.write_text((ROOT / "asv.conf.json").read_text())
    asv_report.set_links(config, REPOSITORY + "/")
    text = config.read_text()
    assert f'"project_url": "{REPOSITORY}"' in text and f'"show_commit_url": "{REPOSITORY}/commit/"' in text
    assert "// Links in the HTML report" in text and text.replace(REPOSITORY + "/commit/", "#").replace(
        REPOSITORY, "#") == (ROOT / "asv.conf.json").read_text()
    with pytest.raises(SystemExit, match="must be http"):
        asv_report.set_links(config, "not a url")


def test_a_regression_found_by_asv_publish_becomes_an_issue_naming_benchmark_and_commits(tmp_path):
    pytest.importorskip("asv", reason="asv is in the dev extra: pip install -e '.[dev]'")
    project = tmp_path / "project"
    (project / "benchmarks").mkdir(parents=True)
    config = ({"version": 1, "project": "toy", "repo": ".", "branches": ["main"],
                                    "environment_type": "existing", "benchmark_dir": "benchmarks",
                                    "results_dir": ".asv/results", "html_dir": ".asv/html",
                                    "regressions_thresholds": {".*": 0.2}})
    (project / "asv.conf.json").write_text(json.dumps(config))
    (project / "benchmarks" / "__init__.py").write_text("")
    env = dict(os.environ, HOME=str(tmp_path / "home"), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e")
    _run(["git", "init", "-q", "-b", "main"], project, env)
    _run([sys.executable, "-m", "asv", "machine", "--yes", "--machine", "toy"], project, env)
    commits = []
    knob = tmp_path / "seconds.txt"
    (project / "benchmarks" / "steps.py").write_text(BENCHMARK.format(str(knob)))
    for number, seconds in enumerate((0.01, 0.01, 0.01, 0.04)):  # the last commit is 4x slower
        knob.write_text(str(seconds))
        (project / "version.txt").write_text(str(number))
        _run(["git", "add", "-A"], project, env)
        _run(["git", "commit", "-qm", f"commit {number}"], project, env)
        commits.append(_run(["git", "rev-parse", "HEAD"], project, env).strip())
        _run([sys.executable, "-m", "asv", "run", "--python=same", "--quick", "--machine", "toy",
              "--set-commit-hash", commits[-1]], project, env)
    _run([sys.executable, "-m", "asv", "publish"], project, env)
    body = asv_report.issue_body(project / ".asv" / "html", REPOSITORY)
    (row,) = [line for line in body.splitlines() if line.startswith("| `steps.time_step")]
    assert f"[{commits[-1][:8]}]({REPOSITORY}/commit/{commits[-1]})" in row  # the one commit that slowed it
    before, after, ratio = (cell.strip() for cell in row.split("|")[3:6])
    assert before.endswith("ms") and after.endswith("ms") and 3 < float(ratio.rstrip("x")) < 5
    assert "1 benchmark(s) slower on main" in body
    # Nothing to report: no issue body.
    (project / ".asv" / "html" / "regressions.json").write_text(json.dumps({"regressions": []}))
    assert asv_report.issue_body(project / ".asv" / "html", REPOSITORY) == ""
