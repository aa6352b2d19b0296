"""What the nightly asv workflow (.github/workflows/nightly-asv.yml) does around `asv publish`.

    python .ci/asv_report.py links asv.conf.json https://github.com/OWNER/REPO
        point the report's project and commit links at the repository (asv.conf.json ships "#",
        which asv renders as dead links: the repository's URL is only known on GitHub);
    python .ci/asv_report.py issue .asv/html https://github.com/OWNER/REPO > regressions.md
        the body of the issue that reports the regressions `asv publish` found (regressions.json):
        one row per benchmark with the commit range where it got slower, linked, the times before
        and after and their ratio. Prints nothing when there is none.

The workflow opens that issue, or updates the open one (label ``performance-regression``), as
pandas' asv-runner does.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

LABEL = "performance-regression"


def set_links(config: Path, repository: str) -> None:
    """Rewrite project_url and show_commit_url in asv.conf.json in place (its comments kept)."""
    repository = repository.rstrip("/")
    if not re.match(r"^https?://[^\s\"]+$", repository):
        raise SystemExit(f"repository URL {repository!r} must be http(s)://..., e.g. https://github.com/OWNER/REPO")
    text = config.read_text()
    for key, value in (("project_url", repository), ("show_commit_url", f"{repository}/commit/")):
        text, count = re.subn(rf'("{key}"\s*:\s*)"[^"]*"', lambda m, v=value: f'{m.group(1)}"{v}"', text)
        if count != 1:
            raise SystemExit(f"{config} has {count} {key!r} entries; expected one")
    config.write_text(text)


def _seconds(value) -> str:
    if value is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def issue_body(html_dir: Path, repository: str) -> str:
    """Markdown listing every regression of the published report ('' if none)."""
    repository = repository.rstrip("/")
    regressions = json.loads((html_dir / "regressions.json").read_text())["regressions"]
    if not regressions:
        return ""
    to_hash = {int(k): v for k, v in json.loads((html_dir / "index.json").read_text())["revision_to_hash"].items()}
    rows = []
    for name, _graph, params, _index, last, best, jumps in regressions:
        label = name + (f" ({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})" if params else "")
        for before, after, old, new in jumps:
            end = to_hash[after]
            if before is None:  # asv: the step is one commit
                where = f"[{end[:8]}]({repository}/commit/{end})"
            else:
                start = to_hash[before]
                where = f"[{start[:8]}...{end[:8]}]({repository}/compare/{start}...{end})"
            ratio = f"{new / old:.2f}x" if old else "-"
            rows.append(f"| `{label}` | {where} | {_seconds(old)} | {_seconds(new)} | {ratio} |")
        if not jumps:
            rows.append(f"| `{label}` | - | {_seconds(best)} (best) | {_seconds(last)} (last) | - |")
    return "\n".join([
        f"`asv publish` found {len(regressions)} benchmark(s) slower on main by more than the thresholds in "
        "asv.conf.json (`regressions_thresholds`). Where each got slower (the commit, or the range between two "
        "measured commits):", "",
        "| benchmark | commits | before | after | ratio |", "|---|---|---|---|---|", *rows, "",
        "Bisect a range with `asv run START..END --bench NAME`, or compare two commits with "
        "`asv continuous START END --bench NAME` (docs/benchmarks.md). This issue is updated every night "
        "while regressions remain; close it once they are fixed or accepted.", ""])


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[0] not in ("links", "issue"):
        raise SystemExit(__doc__)
    command, path, repository = argv
    if command == "links":
        set_links(Path(path), repository)
    else:
        sys.stdout.write(issue_body(Path(path), repository))


if __name__ == "__main__":
    main(sys.argv[1:])
