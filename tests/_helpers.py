"""Constants shared by several test files (fixtures live in conftest.py)."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # the first eight bytes of every PNG file
