"""Tables as the ``fieldbench`` command prints them: titled rows of already formatted text.

A :class:`Table` knows nothing of the terminal: the library formats each number once (here, or
next to the result it formats, e.g. ``evaluation_table``), and the command line renders the table
with rich. This module also holds the tables of the top-level results (the demo and the speed
measurements of ``fieldbench.bench`` and ``fieldbench.models._speed``).
"""

from __future__ import annotations

import dataclasses

__all__ = ["Table", "demo_table", "generation_table", "training_step_table", "solver_table", "datasets_table",
           "GENERATION_STAGES"]


@dataclasses.dataclass(frozen=True)
class Table:
    """``columns``: (heading, "left" or "right") pairs; ``rows``: one text cell per column;
    ``notes``: lines printed under the table."""

    title: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.title!r}: a row has {len(row)} cells for {len(self.columns)} columns")


def _columns(names, left=()) -> tuple[tuple[str, str], ...]:
    return tuple((name, "left" if name in left else "right") for name in names)


def demo_table(result) -> Table:
    """The magpylib cross-check of a :class:`fieldbench.demo.DemoResult`."""
    return Table("cross-check of H against magpylib (long magnets, extrapolated)",
                 _columns(("points", "median relative deviation", "max relative deviation"), left=("points",)),
                 ((str(result.check_points), f"{result.median_deviation:.1e}", f"{result.max_deviation:.1e}"),))


#: The stages of dataset generation, in the order of ``generation_table``'s columns.
GENERATION_STAGES = ("sampling", "solving", "conversion", "encoding", "writing", "scheduling and other")


def generation_table(results, device: str) -> Table:
    """``fieldbench bench datasets``: one row per :class:`fieldbench.bench.GenerationThroughput`."""
    rows = []
    for result in results:
        shares = result.shares()
        rows.append((f"{result.dataset}/{result.split}", f"{result.points:,}", f"{result.seconds:.2f}",
                     f"{result.points_per_second / 1e6:.2f}",
                     *(f"{100 * shares.get(stage, 0):.0f}%" for stage in GENERATION_STAGES)))
    return Table(f"dataset generation on {device}",
                 _columns(("dataset", "points", "seconds", "M points/s") + GENERATION_STAGES, left=("dataset",)),
                 tuple(rows), ("Stage shares are of the workers' combined wall time (threads x seconds).",))


def training_step_table(rows, device: str) -> Table:
    """``fieldbench bench training``: the rows of ``fieldbench.models._speed.training_step_speed``."""
    def verdict(row):
        if "meets_target" not in row:
            return "-"
        if not row["comparable"]:
            return f"not comparable ({row['cores']} cores, paper code {row['paper_code_cores']})"
        return "met" if row["meets_target"] else "missed"

    cells = tuple((row["model"], f"{row['parameters']:,}", f"{row['step_ms']:.1f}",
                   f"{row['paper_code_s']:.2f}" if "paper_code_s" in row else "-",
                   f"{row['speedup']:.0f}x" if "speedup" in row else "-", verdict(row)) for row in rows)
    notes = tuple(sorted({f"paper code (s): {row['paper_code_source']}" for row in rows if "paper_code_source" in row}))
    return Table(f"training step on {device}",
                 _columns(("model", "parameters", "step (ms)", "paper code (s)", "speed-up", "target (>= 40x)"),
                          left=("model",)), cells, notes)


def solver_table(results, device: str) -> Table:
    """``fieldbench bench solvers``: one row per :class:`fieldbench.bench.Throughput` (magpylib last),
    and a note per family comparing the raw core, the public API and magpylib."""
    from .bench import API, CORE

    rows = tuple((r.solver, r.family, str(r.sources), str(r.points), f"{r.seconds:.3f}", f"{r.compile_seconds:.2f}",
                  f"{r.pairs_per_second / 1e6:,.1f}") for r in results)
    magpylib = results[-1].pairs_per_second
    core = {r.family: r.pairs_per_second for r in results if r.solver == CORE}
    notes = tuple(f"{r.family}: core {core[r.family] / magpylib:,.0f}x magpylib's cuboid_field, API "
                  f"{r.pairs_per_second / magpylib:,.0f}x (API at {r.pairs_per_second / core[r.family]:.0%} "
                  "of the core's pairs/s)" for r in results if r.solver == API)
    return Table(f"exact solver throughput on {device}",
                 _columns(("solver", "family", "M", "N", "best time (s)", "compile (s)", "M pairs/s"),
                          left=("solver", "family")), rows, notes)


def datasets_table(listing) -> Table:
    """``fieldbench datasets list``: the entries of :func:`fieldbench.datasets.dataset_listing`."""
    rows = tuple((entry["name"], ", ".join(f"{s} ({v['samples']:,})" for s, v in entry["splits"].items()),
                  ",".join(str(p) for p in sorted({v["points"] for v in entry["splits"].values()})),
                  "yes" if entry["cached"] else "-") for entry in listing)
    return Table("standard datasets", _columns(("name", "splits (samples)", "points/sample", "cached"),
                                               left=("name", "splits (samples)", "points/sample", "cached")), rows)
