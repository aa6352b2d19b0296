"""Constants shared by several test files (fixtures live in conftest.py)."""

from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # the first eight bytes of every PNG file
#: The committed standard dataset specs and registry.json (package data), read directly: tests of
#: the registry code compare against the files, not against that code's own answer.
STANDARD = Path(__file__).resolve().parents[1] / "fieldbench" / "datasets" / "standard"
