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


def test_python_dash_m_runs_the_same_app():
    version = subprocess.run([sys.executable, "-m", "fieldbench", "--version"], capture_output=True, text=True,
                             timeout=120)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"fieldbench {fieldbench.__version__}"
    usage = subprocess.run([sys.executable, "-m", "fieldbench", "datasets", "--help"], capture_output=True, text=True,
                           timeout=120)
    assert usage.returncode == 0, usage.stderr
    assert "verify" in usage.stdout and "publish" in usage.stdout


def test_the_app_is_one_object_wherever_it_is_imported_from():
    from fieldbench.cli import _app

    assert _app.app is app


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


def test_bench_solvers_runs_reports_both_solvers_and_writes_json(tmp_path):
    import json

    out = tmp_path / "solvers.json"
    result = runner.invoke(app, ["bench", "solvers", "--sources", "8", "--points", "300", "--repeats", "1",
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "prism" in result.output and "magpylib" in result.output
    written = json.loads(out.read_text())
    assert written["device"] in result.output
    assert [r["family"] for r in written["results"]][-1] == "cuboid (long)"
    for row in written["results"]:  # every value of the table, unrounded
        assert row["pairs_per_second"] == row["sources"] * row["points"] / row["seconds"] > 0
        assert f"{row['pairs_per_second'] / 1e6:,.1f}" in result.output and f"{row['seconds']:.3f}" in result.output


def test_datasets_list_writes_every_value_to_json(tmp_path):
    import json

    from fieldbench.datasets import dataset_spec, list_datasets

    out = tmp_path / "datasets.json"
    result = runner.invoke(app, ["datasets", "list", "--json", str(out)])
    assert result.exit_code == 0, result.output
    listed = json.loads(out.read_text())
    assert [entry["name"] for entry in listed] == list_datasets()
    for entry in listed:
        spec = dataset_spec(entry["name"])
        assert entry["splits"] == {name: {"samples": split.samples, "points": split.points, "dim": split.dim}
                                   for name, split in spec.splits.items()}
        assert entry["cached"] == (Path(entry["path"]) / "card.json").is_file()
        assert entry["name"] in result.output
    refused = runner.invoke(app, ["datasets", "list", "--json", str(tmp_path)])
    assert refused.exit_code == 1 and "is a folder, not a file" in refused.output


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
    result = runner.invoke(app, ["ceiling", "circles2d-mini", "--split", "test_multi", "--ranks", "4,8",
                                 "--points", "64", "--train-sources", "48", "--json", str(out)])
    assert result.exit_code == 0, result.output
    import json

    (entry,) = json.loads(out.read_text())
    assert entry["ranks"] == [4, 8] and entry["phi_error"][0] > entry["phi_error"][1]
    assert entry["field_error"] is None
    joint = runner.invoke(app, ["ceiling", "circles2d-mini", "--split", "test_multi", "--ranks", "4,8",
                                "--points", "64", "--train-sources", "48", "--field", "--json", str(out)])
    assert joint.exit_code == 0 and "H rel. L2 (joint)" in joint.output, joint.output
    (entry,) = json.loads(out.read_text())
    assert entry["field_error"][0] > entry["field_error"][1] and len(entry["joint_phi_error"]) == 2
    bad = runner.invoke(app, ["ceiling", "circles2d-mini", "--ranks", "four"])
    assert bad.exit_code == 1 and "comma-separated integers" in bad.output


def test_evaluate_never_cuts_a_number_and_writes_json(tmp_path):
    import json

    out = tmp_path / "scores.json"
    result = runner.invoke(app, ["evaluate", "exact", "--dataset", "circles2d-mini", "--split", "test_multi",
                                 "--limit", "3", "--json", str(out)])
    assert result.exit_code == 0, result.output
    (scores,) = json.loads(out.read_text())
    assert f"{scores['phi_error']:.3g}" in result.output and "…" not in result.output  # off a terminal too
    bad = runner.invoke(app, ["evaluate", "exact", "--dataset", "circles2d-mini", "--limit", "0"])
    assert bad.exit_code == 1 and "--limit must be a positive number" in bad.output


def test_error_messages_keep_bracketed_words():
    import typer

    from fieldbench.cli import _common

    @_common.user_errors
    def fails():
        raise ImportError("install it with pip install 'fieldbench[fmm]'")

    with _common.console.capture() as captured:
        try:
            fails()
        except typer.Exit as exit_:
            assert exit_.exit_code == 1
    assert "fieldbench[fmm]" in captured.get()


def test_a_bug_inside_a_command_surfaces_with_its_traceback(tmp_path, monkeypatch):
    """Before: the CLI caught TypeError and RuntimeError wholesale and printed a bug as `error: ...`."""
    import fieldbench.demo

    def buggy(*args, **kwargs):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(fieldbench.demo, "run_demo", buggy)
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code != 0 and isinstance(result.exception, TypeError)
    assert "error: " not in result.output
    for bug in (TypeError("a bug"), RuntimeError("another bug"), KeyError("a dict lookup")):
        def fails(bug=bug):
            raise bug

        try:
            _common_module().user_errors(fails)()
        except type(bug) as raised:
            assert raised is bug
        else:
            raise AssertionError(f"{bug!r} was swallowed")


def test_fieldbench_errors_are_one_friendly_line_whatever_their_builtin_base():
    import typer

    from fieldbench import FieldbenchError
    from fieldbench.exceptions import DatasetUnavailableError, UnknownDatasetError, UnknownSplitError

    for error in (DatasetUnavailableError("no mirror"), UnknownDatasetError("unknown dataset 'x'"),
                  UnknownSplitError("split 'x' not in d")):
        assert isinstance(error, FieldbenchError)

        def fails(error=error):
            raise error

        with _common_module().console.capture() as captured:
            try:
                _common_module().user_errors(fails)()
            except typer.Exit as exit_:
                assert exit_.exit_code == 1
            else:
                raise AssertionError("no exit")
        assert captured.get().strip() == f"error: {error.args[0]}"


def _common_module():
    from fieldbench.cli import _common

    return _common


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


# -- damaged JSON inputs -------------------------------------------------------------------------------
def test_damaged_json_inputs_name_the_file_and_the_fix(tmp_path):
    """Before: `error: Expecting value: line 1 column 12 (char 11)`, no file named."""
    from fieldbench.leaderboard._benchmark import shipped_checkpoints
    from fieldbench.models import build_model, save_checkpoint

    bad = tmp_path / "bad.json"
    bad.write_text('{"steps": , "batch_size": 2}')
    result = runner.invoke(app, ["train", "linear", "--dataset", "circles2d-mini", "--config", str(bad),
                                 "--checkpoint", str(tmp_path / "never.eqx")])
    assert result.exit_code == 1
    assert result.output.strip() == (f"error: {bad} is damaged (not valid JSON: Expecting value at line 1 column 11); "
                                     'fix it: a JSON object of recipe fields, e.g. {"steps": 500}'), result.output
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    result = runner.invoke(app, ["train", "linear", "--dataset", "circles2d-mini", "--config", str(listed)])
    assert result.exit_code == 1 and f"--config {listed} holds a JSON list, not an object" in result.output
    # A checkpoint whose metadata was damaged: the scaling command and the main job name it.
    model, hyperparameters = build_model("linear", length_scale=3.0)
    checkpoint = save_checkpoint(tmp_path / "shipped" / "linear-circles2d-seed0.eqx", model,
                                 {"model": "linear", "hyperparameters": hyperparameters})
    meta = checkpoint.with_suffix(".json")
    meta.write_text(meta.read_text()[:-20])  # cut short, as by a full disk
    result = runner.invoke(app, ["scaling", "--methods", "exact", "--sizes", "10", "--checkpoint",
                                 f"mine={checkpoint}", "--out", str(tmp_path / "scaling")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"error: {meta} is damaged (not valid JSON: ") and "retrain" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    result = runner.invoke(app, ["scaling", "--methods", "exact", "--sizes", "10", "--checkpoint", str(checkpoint),
                                 "--out", str(tmp_path / "scaling")])
    assert result.exit_code == 1 and "is not NAME=FILE" in result.output
    from fieldbench._io import DamagedFileError

    try:
        shipped_checkpoints(checkpoint.parent)
    except DamagedFileError as error:
        assert str(error).startswith(f"{meta} is damaged")
        assert "git checkout -- fieldbench/models/checkpoints" in str(error)
    else:
        raise AssertionError("a damaged shipped checkpoint was read")


# -- fine-tuning -----------------------------------------------------------------------------------------
def test_train_fine_tunes_into_a_new_checkpoint_and_never_over_its_source(tmp_path):
    import json

    from fieldbench._io import file_sha256
    from fieldbench.models import build_model, load_checkpoint, save_checkpoint

    help_text = runner.invoke(app, ["train", "--help"], terminal_width=200).output
    assert "--init-from" in help_text and "fine-tune" in help_text and "--restart" in help_text
    # A finished checkpoint without training state, like the shipped ones.
    model, hyperparameters = build_model("linear", length_scale=3.0, seed=5)
    source = save_checkpoint(tmp_path / "source.eqx", model, {"model": "linear", "hyperparameters": hyperparameters})
    before = source.read_bytes()
    common = ["train", "linear", "--dataset", "circles2d-mini", "--init-from", str(source)]
    two_stage = runner.invoke(app, common + ["--checkpoint", str(tmp_path / "new.eqx")])
    assert two_stage.exit_code == 1 and "pass --recipe adam" in two_stage.output
    assert len(two_stage.output.strip().splitlines()) == 1 and not (tmp_path / "new.eqx").exists()
    adam = common + ["--recipe", "adam", "--steps", "2", "--batch-size", "2"]
    itself = runner.invoke(app, adam + ["--checkpoint", str(tmp_path / "." / "source.eqx")])
    assert itself.exit_code == 1 and "is the init_from (--init-from) checkpoint itself" in itself.output
    assert source.read_bytes() == before
    result = runner.invoke(app, adam + ["--checkpoint", str(tmp_path / "new.eqx")])
    assert result.exit_code == 0, result.output
    assert f"from {source}" in result.output and source.read_bytes() == before
    tuned, meta = load_checkpoint(tmp_path / "new.eqx", "linear")
    assert meta["training"]["init_from"] == {"path": str(source), "sha256": file_sha256(source)}
    assert meta["training"]["recipe"] == "adam" and meta["step"] == 2
    assert json.loads((tmp_path / "new.state.json").read_text())["config"]["init_from"]["sha256"] == file_sha256(source)


def test_ci_runs_the_readme_test_command_with_ci_true():
    """CI=true makes the browser test fail where chromium is missing instead of skipping it."""
    root = Path(__file__).resolve().parents[1]
    (readme_command,) = [line.partition("#")[0].strip() for line in (root / "README.md").read_text().splitlines()
                         if line.startswith("./setup.sh test")]
    commands = [line.strip() for line in (root / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == readme_command  # exactly the README's command
    assert "export CI=true" in commands[:-1]
    assert any(" -m ruff check " in command for command in commands[:-1])  # the lint the README promises


# -- the library calls behind the commands ----------------------------------------------------------------
def test_generate_builds_its_spec_three_ways(tmp_path):
    """`fieldbench generate` hands its argument to datasets.resolve_spec: a standard name, a JSON
    spec file, or (no argument) one split 'data' described by the options."""
    from fieldbench.datasets import dataset_spec, resolve_spec
    from fieldbench.pipeline import DatasetSpec, SplitSpec
    from fieldbench.sources import ConfigurationSpec

    assert resolve_spec("circles2d-mini") == dataset_spec("circles2d-mini")
    path = tmp_path / "mine.json"
    path.write_text(__import__("json").dumps(dataset_spec("circles2d-mini").to_dict()))
    assert resolve_spec(str(path)) == dataset_spec("circles2d-mini")
    described = resolve_spec(None, name="custom", families=["disc", "prism"], sources=(1, 3), size=(0.5, 1.0),
                             samples=4, points=8, seed=2, shard_size=2)
    configuration = ConfigurationSpec(families=("disc", "prism"), sources=(1, 3), domain=3.0, size=(0.5, 1.0),
                                      aspect="square", magnetisation=1.0, overlap="none")
    assert described == DatasetSpec(name="custom", splits={"data": SplitSpec(
        configuration, samples=4, points=8, seed=2, shard_size=2)})


def test_train_plans_its_run_before_any_work(tmp_path):
    from fieldbench.models import FitConfig, TrainConfig, plan_training

    plan = plan_training("linear", "circles2d-mini")
    assert plan.recipe == "two-stage" and isinstance(plan.settings, FitConfig)
    assert plan.checkpoint.as_posix() == "fieldbench-out/checkpoints/linear-circles2d-mini.eqx"
    assert plan_training("linear", "circles2d-mini", seed=2).checkpoint.name == "linear-circles2d-mini-seed2.eqx"
    adam = plan_training("linear", "circles2d-mini", recipe="adam", steps=3, learning_rates=(1e-3,),
                         checkpoint=tmp_path / "x.eqx")
    assert isinstance(adam.settings, TrainConfig) and adam.settings.steps == 3 and adam.checkpoint == tmp_path / "x.eqx"
    assert adam.describe() == f"training linear on circles2d-mini with the adam recipe -> {tmp_path / 'x.eqx'}"


def test_the_leaderboard_workflows_call_commands_and_options_that_exist():
    """.github/workflows/leaderboard-*.yml run `fieldbench ...` lines on GitHub: each must name a real
    command and real options (a rename here would otherwise break only there, after a merge)."""
    import shlex

    import yaml

    root = Path(__file__).resolve().parents[1]
    lines = []
    for path in sorted((root / ".github" / "workflows").glob("leaderboard-*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                lines += [line.strip() for line in step.get("run", "").splitlines()
                          if line.strip().startswith("fieldbench ")]
    assert any("verify --rescore" in line and "--only" in line for line in lines), lines
    for line in lines:
        words = [w for w in shlex.split(line.split("$(")[0]) if not w.startswith("$")][1:]
        command = [w for w in words if not w.startswith("-") and w not in ("site",)]
        options = [w for w in words if w.startswith("--")]
        path = [w for w in command if w in ("leaderboard", "verify", "datasets", "get")]
        result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, (line, result.output)
        for option in options + (["--only"] if "--only" in line else []):
            assert option in result.output, (line, option, result.output)
