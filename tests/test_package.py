"""The installed package is complete: its data is found through the package, not the checkout, and
its subpackages are reachable from ``import fieldbench`` without being imported by it.

A copy of the ``fieldbench`` package alone, in a folder with no repository around it, stands in for
a wheel here (``.ci/wheel_smoke.sh`` installs the real wheel on CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _helpers import STANDARD

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "fieldbench" / "models" / "checkpoints"


def _python(code: str, *, cwd: Path, path: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter importing fieldbench from ``path``, in ``cwd``, with no
    ``FIELDBENCH_REGISTRY``: where the package finds its data must not depend on either."""
    env = {k: v for k, v in os.environ.items() if k != "FIELDBENCH_REGISTRY"}
    env |= {"PYTHONPATH": str(path), "FIELDBENCH_CPU_DEVICES": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def installed_copy(tmp_path_factory) -> Path:
    """The package alone (its data included, no repository around it), as a wheel installs it."""
    site = tmp_path_factory.mktemp("site-packages")
    shutil.copytree(ROOT / "fieldbench", site / "fieldbench",
                    ignore=shutil.ignore_patterns("__pycache__", "*.opt.eqx", "*.state.json", "*.basis.*"))
    return site


# -- lazy subpackages ----------------------------------------------------------------------------------
LAZY_CHECK = textwrap.dedent("""
    import json, sys
    import fieldbench as fb

    subpackages = ("pipeline", "datasets", "models", "evaluation", "leaderboard")
    heavy = ("fieldbench.datasets", "fieldbench.models", "fieldbench.evaluation", "fieldbench.leaderboard",
             "equinox", "optax", "dask", "pyarrow")
    before = sorted(m for m in sys.modules if m.startswith(heavy))
    listed = [name for name in subpackages if name in dir(fb)]
    load = fb.datasets.load
    print(json.dumps({"before": before, "listed": listed, "load": load.__module__,
                      "same": fb.models is sys.modules["fieldbench.models"],
                      "evaluate": callable(fb.evaluation.evaluate), "board": callable(fb.leaderboard.verify_records)}))
""")


def test_import_fieldbench_reaches_the_subpackages_without_importing_them(tmp_path):
    """Before: `fb.datasets.load(...)`, as the README writes it, raised AttributeError."""
    run = _python(LAZY_CHECK, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["before"] == [], found  # `import fieldbench` stays light
    assert found["listed"] == ["pipeline", "datasets", "models", "evaluation", "leaderboard"]
    assert found["load"] == "fieldbench.datasets._load" and found["same"] and found["evaluate"] and found["board"]


def test_an_unknown_attribute_of_fieldbench_is_still_an_attribute_error():
    import fieldbench

    with pytest.raises(AttributeError, match="has no attribute 'dataset'"):
        fieldbench.dataset  # noqa: B018  (a typo of datasets must not import anything)


# -- the registry is package data ----------------------------------------------------------------------
def test_the_registry_is_package_data_found_from_anywhere(installed_copy, tmp_path):
    """Before: `fieldbench datasets list` from a wheel failed with "cannot find the dataset registry:
    expected .../datasets (the repository's datasets/ folder...)"."""
    run = _python("import json; from fieldbench.datasets import list_datasets, registry_entries\n"
                  "from fieldbench.datasets._registry import registry_dir\n"
                  "print(json.dumps({'dir': str(registry_dir()), 'names': list_datasets(),\n"
                  "                  'entry': registry_entries('circles2d-mini')['content_sha256']}))",
                  cwd=tmp_path, path=installed_copy)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(found["dir"]) == installed_copy / "fieldbench" / "datasets" / "standard"
    assert found["names"] == sorted(p.stem for p in STANDARD.glob("*.json") if p.name != "registry.json")
    registry = json.loads((STANDARD / "registry.json").read_text())
    assert found["entry"] == registry["datasets"]["circles2d-mini"]["content_sha256"]


def test_in_a_checkout_the_registry_is_the_committed_folder_itself(monkeypatch):
    """`fieldbench datasets register` and `build` rewrite the committed registry in place."""
    from fieldbench.datasets._registry import registry_dir, registry_path

    monkeypatch.delenv("FIELDBENCH_REGISTRY", raising=False)
    assert registry_dir().resolve() == STANDARD and registry_path().resolve() == STANDARD / "registry.json"
    monkeypatch.setenv("FIELDBENCH_REGISTRY", str(STANDARD.parent))  # the variable still wins
    assert registry_dir() == STANDARD.parent


def test_an_installation_without_its_data_says_so_in_one_line(installed_copy, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(installed_copy, broken, ignore=shutil.ignore_patterns("standard", "checkpoints"))
    run = _python("from fieldbench.datasets import list_datasets\n"
                  "from fieldbench.models import shipped_checkpoint_dir\n"
                  "from fieldbench.exceptions import MissingPackageDataError\n"
                  "for call in (list_datasets, shipped_checkpoint_dir):\n"
                  "    try:\n"
                  "        call()\n"
                  "    except MissingPackageDataError as error:\n"
                  "        print(error)", cwd=tmp_path, path=broken)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 2, run.stdout
    assert "fieldbench/datasets/standard is missing from this installation" in lines[0]
    assert "FIELDBENCH_REGISTRY" in lines[0] and "reinstall fieldbench" in lines[0]
    assert "fieldbench/models/checkpoints) are missing from this installation" in lines[1]
    assert "reinstall fieldbench" in lines[1]


# -- the shipped checkpoints are package data ----------------------------------------------------------
def test_the_benchmark_finds_the_shipped_checkpoints_in_the_package(installed_copy, tmp_path):
    """Before: `fieldbench benchmark` from a wheel looked in `parents[2]/baselines` and found none."""
    run = _python("import json; from fieldbench.leaderboard._benchmark import shipped_checkpoints\n"
                  "print(json.dumps([[m, d, str(p)] for m, d, p in shipped_checkpoints()]))",
                  cwd=tmp_path, path=installed_copy)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    expected = sorted(p.name for p in SHIPPED.glob("*-seed0.eqx"))
    assert expected and [Path(p).name for _, _, p in found] == expected
    assert all(Path(p).parent == installed_copy / "fieldbench" / "models" / "checkpoints" for _, _, p in found)
    assert ["linear", "circles2d"] in [[m, d] for m, d, _ in found]


def test_every_shipped_checkpoint_stays_under_8_mib():
    """Checkpoints in git stay small (larger ones travel like datasets, by URL and sha256): a
    baseline sized past 8 MiB must be published, not committed."""
    from fieldbench.models import shipped_checkpoint_dir

    sizes = {path.name: path.stat().st_size for path in shipped_checkpoint_dir().glob("*.eqx")}
    assert sizes and not {name: size for name, size in sizes.items() if size > 8 * 2 ** 20}


def test_a_records_shipped_checkpoint_resolves_by_its_old_and_its_new_path(tmp_path):
    """Committed records name `baselines/checkpoints/NAME` and are sealed by their digest: the moved
    file is found by its name in the package; a record written from a wheel names it by its package
    path, which resolves in any installation."""
    from fieldbench.leaderboard._record import resolve_checkpoint, stored_path
    from fieldbench.models import shipped_checkpoint, shipped_checkpoint_dir

    name = "linear-circles2d-seed0.eqx"
    shipped = shipped_checkpoint_dir() / name
    records = tmp_path / "elsewhere" / "leaderboard" / "records"  # a records folder of another repository
    for stored in (f"baselines/checkpoints/{name}", f"fieldbench/models/checkpoints/{name}"):
        assert resolve_checkpoint(stored, records) == shipped
    assert stored_path(shipped, records) == f"fieldbench/models/checkpoints/{name}"
    # Only the shipped folder's paths: another folder, or a name that does not ship, stays where it says.
    assert resolve_checkpoint(f"mine/{name}", records) == tmp_path / "elsewhere" / "mine" / name
    assert shipped_checkpoint("baselines/checkpoints/none-circles2d-seed0.eqx") is None
    # A file at the path in the records' own repository wins over the package's.
    local = tmp_path / "elsewhere" / "baselines" / "checkpoints" / name
    local.parent.mkdir(parents=True)
    local.write_bytes(b"")
    assert resolve_checkpoint(f"baselines/checkpoints/{name}", records) == local


# -- a process that loads data exits cleanly ---------------------------------------------------------------
def test_load_registers_the_exit_handler_that_settles_pyarrow_once(standard_minis, tmp_path):
    """Before: `python -c "import fieldbench as fb; fb.datasets.load('circles2d-mini', 'train')"`, the
    wheel smoke test's step, died at exit with "terminate called without an active exception" (exit
    134) in 3 of 16 runs. Whether a run aborts is chance, so the test checks that the handler
    settling pyarrow at exit is registered by the first read, and only once."""
    run = _python(textwrap.dedent(f"""
        import atexit
        from fieldbench.datasets import load

        before = atexit._ncallbacks()
        load({str(standard_minis["circles2d-mini"])!r}, "val")
        first = atexit._ncallbacks()
        load({str(standard_minis["circles2d-mini"])!r}, "test-single")
        print(first - before, atexit._ncallbacks() - first)
    """), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "0"], run.stdout
