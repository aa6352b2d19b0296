#!/usr/bin/env bash
# Set up fieldbench in ./.venv with a Python >= 3.12.
#   ./setup.sh          the package and its light core dependencies (enough for `fieldbench`)
#   ./setup.sh test     everything the test suite needs: extras magtense, fmm and dev
# Choose the interpreter with FIELDBENCH_PYTHON=/path/to/python3.12 if the search below misses it.
set -euo pipefail
cd "$(dirname "$0")"

case "${1:-}" in
  "") extras="" ;;
  test) extras="[all]" ;;
  *) echo "usage: ./setup.sh [test]" >&2; exit 2 ;;
esac

python_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
  local candidate
  for candidate in "${FIELDBENCH_PYTHON:-}" python3.12 python3.13 python3.14 python3 python; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
      command -v "$candidate"; return 0
    fi
  done
  # pyenv keeps installed interpreters whose shims only work when selected: look at them directly.
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 \
                   /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9] /opt/homebrew/bin/python3.1[2-9]; do
    if [ -x "$candidate" ] && python_ok "$candidate"; then echo "$candidate"; return 0; fi
  done
  return 1
}

if [ -x .venv/bin/python ] && python_ok .venv/bin/python; then
  :
else
  if ! python="$(find_python)"; then
    cat >&2 <<'MSG'
fieldbench needs Python 3.12 or newer, and none was found on PATH or among pyenv's versions.
Install one, e.g.:  sudo apt-get install python3.12 python3.12-venv   (Debian/Ubuntu)
                    brew install python@3.12                            (macOS)
                    pyenv install 3.12                                   (pyenv)
then run ./setup.sh again, or point FIELDBENCH_PYTHON at it.
MSG
    exit 1
  fi
  echo "setup: creating .venv with $python ($("$python" --version 2>&1))"
  rm -rf .venv
  "$python" -m venv .venv
fi

if [ "${1:-}" = test ] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  # The leaderboard page is tested in a real headless browser, driven by selenium through
  # chromedriver (the test skips without them; with CI=true it fails).
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian's chromium and chromium-driver for the leaderboard browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "setup: note: no chromium or chromedriver found; the leaderboard browser test will be skipped" \
         "(install Debian's chromium and chromium-driver to run it)"
  fi
fi

stamp=".venv/.fieldbench-installed${extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing fieldbench${extras} into .venv (the magtense extra downloads ~3 GB once)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${extras}"
  touch "$stamp"
fi
