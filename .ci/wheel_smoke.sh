#!/usr/bin/env bash
# CI: fieldbench as a user gets it. Builds the wheel from the committed files, installs it into a
# fresh virtualenv outside the source tree (its dependencies from the package index, as
# `pip install fieldbench` would: never the checkout's .venv, whose packages would hide a missing
# dependency), and from a folder outside the checkout runs
#   fieldbench datasets list; fieldbench datasets get circles2d-mini (rebuilt: no mirror);
#   fb.datasets.load(...) from Python; and `fieldbench`, the main job, on its embedded defaults.
#
#   .ci/wheel_smoke.sh [PYTHON]    PYTHON builds the wheel and makes the virtualenv (default .venv/bin/python)
#
# Everything is written under one temporary folder, removed at the end (FIELDBENCH_KEEP=1 keeps it).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-$repo/.venv/bin/python}"
work="$(mktemp -d "${TMPDIR:-/tmp}/fieldbench-wheel.XXXXXX")"
[ "${FIELDBENCH_KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
started=$SECONDS
step() { echo "wheel-smoke: [$((SECONDS - started)) s] $*"; }
# pip, without the one warning per package about index folders of this machine's pip configuration
# that do not exist (noise, not news); pip's exit status is kept (pipefail).
pip_quiet() { "$@" 2>&1 | { grep -v "^WARNING: Location 'file://" || true; }; }

# The files a release ships: the tracked ones (as in the working tree), not untracked leftovers
# such as a training run's checkpoints or a stale build/ folder, which setuptools would package.
mkdir "$work/src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$repo" ls-files -z | (cd "$repo" && tar --null --ignore-failed-read -T - -cf -) 2>/dev/null \
    | tar -C "$work/src" -xf -
else
  cp -a "$repo/." "$work/src/"
fi

step "building the wheel"
pip_quiet "$python" -m pip wheel --quiet --no-deps -w "$work/dist" "$work/src"
wheel="$(ls "$work"/dist/fieldbench-*.whl)"
step "built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

step "installing it into a fresh virtualenv"
"$python" -m venv "$work/venv"
pip_quiet "$work/venv/bin/python" -m pip install --quiet "$wheel"
step "installed"

# A user's environment: no checkout on the path, no registry override, a cache of its own, no mirror
# (set but empty: `get` rebuilds locally and verifies against the registry, never the network).
mkdir "$work/run"
cd "$work/run"
unset PYTHONPATH FIELDBENCH_REGISTRY
export FIELDBENCH_CACHE="$work/cache" FIELDBENCH_MIRROR="" FIELDBENCH_CONFIG="$work/no-config.toml"
export PATH="$work/venv/bin:$PATH"
fieldbench="$work/venv/bin/fieldbench"

step "fieldbench datasets list"
"$fieldbench" datasets list | tee "$work/list.txt"
grep -q "circles2d-mini" "$work/list.txt"

step "fieldbench datasets get circles2d-mini"
"$fieldbench" datasets get circles2d-mini

step "fb.datasets.load from Python"
"$work/venv/bin/python" - "$repo" <<'PY'
import sys
from pathlib import Path

import fieldbench as fb

repo = Path(sys.argv[1]).resolve()
where = Path(fb.__file__).resolve()
assert repo not in where.parents, f"fieldbench was imported from the checkout ({where}), not from the wheel"
split = fb.datasets.load("circles2d-mini", "train")
assert len(split) > 0 and split.phi.shape == split.points.shape[:2], split.points.shape
print(f"fieldbench {fb.__version__} from {where.parent}: circles2d-mini train, {len(split)} samples, "
      f"points {split.points.shape}")
PY

step "fieldbench (the main job)"
"$fieldbench"
records=(fieldbench-out/benchmark/records/*.json)
test -f fieldbench-out/benchmark/index.html
step "the main job wrote ${#records[@]} records and fieldbench-out/benchmark/index.html"
"$work/venv/bin/python" - "${#records[@]}" <<'PY'
import sys

from fieldbench.leaderboard._benchmark import shipped_checkpoints

scored, shipped = int(sys.argv[1]), len(shipped_checkpoints())
assert shipped > 0 and scored >= shipped + 2, f"{scored} records for {shipped} shipped checkpoints and the exact sum"
PY
step "done"
