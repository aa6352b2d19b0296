"""The `fieldbench` command: help, version, and the main job end to end (small)."""

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import fieldbench
from fieldbench.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "bench"):
        assert command in result.output


def test_version_matches_the_package():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert fieldbench.__version__ in result.output


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("fieldbench")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert fieldbench.__version__ in result.stdout


def test_demo_writes_a_picture_and_agrees_with_magpylib(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path), "--seed", "3"])
    assert result.exit_code == 0, result.output
    image = tmp_path / "demo-fields.png"
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from fieldbench.demo import run_demo

    outcome = run_demo(tmp_path, seed=3, resolution=40)
    assert outcome.max_deviation < 1e-7 and outcome.check_points > 300


def test_unknown_command_fails_with_usage():
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code != 0


def test_bench_solvers_runs_and_reports_both_solvers():
    result = runner.invoke(app, ["bench", "solvers", "--sources", "8", "--points", "300", "--repeats", "1"])
    assert result.exit_code == 0, result.output
    assert "prism" in result.output and "magpylib" in result.output


def test_train_refuses_to_replace_a_finished_checkpoint(tmp_path):
    from fieldbench.models import build_model, save_checkpoint

    model, hyperparameters = build_model("linear", length_scale=3.0)
    existing = save_checkpoint(tmp_path / "linear.eqx", model, {"model": "linear", "hyperparameters": hyperparameters})
    before = existing.read_bytes()
    result = runner.invoke(app, ["train", "linear", "--dataset", "circles2d-mini", "--checkpoint", str(existing)])
    assert result.exit_code == 1
    assert "--restart" in result.output and "Traceback" not in result.output
    assert existing.read_bytes() == before


def test_train_runs_the_default_recipe_and_says_so(tmp_path):
    target = tmp_path / "linear.eqx"
    result = runner.invoke(app, ["train", "linear", "--dataset", "circles2d-mini", "--checkpoint", str(target)])
    assert result.exit_code == 0, result.output
    assert "two-stage recipe" in result.output and "closed-form head" in result.output
    assert target.is_file()
    wrong = runner.invoke(app, ["train", "linear", "--dataset", "circles2d-mini", "--steps", "5",
                                "--checkpoint", str(tmp_path / "other.eqx")])
    assert wrong.exit_code == 1 and "do not apply to the two-stage recipe" in wrong.output


def test_ceiling_command_prints_and_writes_json(tmp_path):
    out = tmp_path / "ceiling.json"
    result = runner.invoke(app, ["ceiling", "circles2d-mini", "--split", "test-multi", "--ranks", "4,8",
                                 "--points", "64", "--train-sources", "48", "--json", str(out)])
    assert result.exit_code == 0, result.output
    import json

    (entry,) = json.loads(out.read_text())
    assert entry["ranks"] == [4, 8] and entry["phi_error"][0] > entry["phi_error"][1]
    bad = runner.invoke(app, ["ceiling", "circles2d-mini", "--ranks", "four"])
    assert bad.exit_code == 1 and "comma-separated integers" in bad.output


def test_evaluate_never_cuts_a_number_and_writes_json(tmp_path):
    import json

    out = tmp_path / "scores.json"
    result = runner.invoke(app, ["evaluate", "exact", "--dataset", "circles2d-mini", "--split", "test-multi",
                                 "--limit", "3", "--json", str(out)])
    assert result.exit_code == 0, result.output
    (scores,) = json.loads(out.read_text())
    assert f"{scores['phi_error']:.3g}" in result.output and "…" not in result.output  # off a terminal too
    bad = runner.invoke(app, ["evaluate", "exact", "--dataset", "circles2d-mini", "--limit", "0"])
    assert bad.exit_code == 1 and "--limit must be a positive number" in bad.output


def test_error_messages_keep_bracketed_words():
    import typer

    from fieldbench.cli import _app

    @_app.user_errors
    def fails():
        raise ImportError("install it with pip install 'fieldbench[fmm]'")

    with _app.console.capture() as captured:
        try:
            fails()
        except typer.Exit as exit_:
            assert exit_.exit_code == 1
    assert "fieldbench[fmm]" in captured.get()


def test_a_failing_verify_prints_no_stray_error_line(tmp_path):
    (tmp_path / "card.json").write_text("{}")
    result = runner.invoke(app, ["datasets", "verify", str(tmp_path)])
    assert result.exit_code == 1
    assert "error: 1" not in result.output


def test_an_unknown_scheduler_lists_the_choices_before_any_work(tmp_path):
    target = tmp_path / "data"
    result = runner.invoke(app, ["generate", "--out", str(target), "--samples", "2", "--points", "4",
                                 "--shard-size", "2", "--scheduler", "bogus"])
    assert result.exit_code == 1
    assert "--scheduler 'bogus' is not a scheduler: use threads (the default), processes, sync" in result.output
    assert "tcp://HOST:PORT" in result.output and not target.exists()


def test_bracketed_text_is_printed_as_it_is(tmp_path):
    import json

    from fieldbench.pipeline import DatasetSpec, SplitSpec
    from fieldbench.sources import ConfigurationSpec

    spec = DatasetSpec(name="tiny", splits={"data": SplitSpec(ConfigurationSpec(), samples=2, points=4, shard_size=2)})
    data = spec.to_dict()
    data["splits"]["data"]["configuration"]["domain"] = [2, 1]
    (tmp_path / "tiny.json").write_text(json.dumps(data))
    result = runner.invoke(app, ["generate", str(tmp_path / "tiny.json"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "(the domain is [lo, hi]^d)" in result.output, result.output
    # A problem naming a folder with brackets keeps them (rich markup would eat "[fmm]").
    folder = tmp_path / "records[fmm]"
    folder.mkdir()
    result = runner.invoke(app, ["leaderboard", "verify", "--records", str(folder)])
    assert result.exit_code == 1 and f"{folder}: no records found" in result.output, result.output


def test_unwritable_outputs_are_refused_before_any_work(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    cases = [
        (["train", "linear", "--dataset", "circles2d-mini", "--checkpoint", "/sys/fieldbench-test/linear.eqx"],
         "--checkpoint /sys/fieldbench-test/linear.eqx: cannot write in /sys"),
        (["train", "linear", "--dataset", "circles2d-mini", "--checkpoint", str(afile / "linear.eqx")],
         f"{afile} is a file, so nothing can be created under it"),
        (["scaling", "--methods", "exact", "--sizes", "10", "--out", str(afile / "sub")],
         f"--out {afile / 'sub'}: {afile} is a file"),
        (["demo", "--out", str(afile)], f"--out {afile} is a file, not a folder"),
        (["evaluate", "exact", "--dataset", "circles2d-mini", "--limit", "1", "--json", str(tmp_path)],
         "is a folder, not a file"),
    ]
    for arguments, message in cases:
        result = runner.invoke(app, arguments)
        assert result.exit_code == 1, (arguments, result.output)
        assert message in result.output and "Traceback" not in result.output, (arguments, result.output)
        assert "training" not in result.output and "wrote" not in result.output  # refused before the work
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_non_finite_learning_rate_is_refused_up_front(tmp_path):
    target = tmp_path / "linear.eqx"
    result = runner.invoke(app, ["train", "linear", "--dataset", "circles2d-mini", "--learning-rate", "nan",
                                 "--checkpoint", str(target)])
    assert result.exit_code == 1 and "learning_rate must be a positive number; got nan" in result.output
    assert not target.exists() and "Traceback" not in result.output
