"""Pictures of fields: potential maps, field lines and source outlines (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle, Rectangle  # noqa: E402

from .sources import Family, Sources  # noqa: E402

__all__ = ["draw_sources", "plot_field_map"]


def draw_sources(ax, sources: Sources, *, color: str = "white") -> None:
    """Outline 2D sources on an axis and draw their magnetisation as arrows."""
    for family, center, magnetisation, size in zip(np.asarray(sources.family), np.asarray(sources.centers),
                                                   np.asarray(sources.magnetisations), np.asarray(sources.sizes)):
        if Family(int(family)).is_round:
            patch = Circle(center, size[0] / 2, fill=False, ec=color, lw=1.2)
        else:
            patch = Rectangle(center - size / 2, size[0], size[1], fill=False, ec=color, lw=1.2)
        ax.add_patch(patch)
        scale = 0.35 * size.min() / max(np.linalg.norm(magnetisation), 1e-12)
        ax.annotate("", xy=center + scale * magnetisation, xytext=center - scale * magnetisation,
                    arrowprops=dict(arrowstyle="->", color="crimson", lw=1.5))


def plot_field_map(sources: Sources, grid_x: np.ndarray, grid_y: np.ndarray, phi: np.ndarray, field: np.ndarray,
                   path: str | Path, *, title: str = "") -> Path:
    """Two panels: the potential with equipotentials, and |H| (log colour scale) with field lines.

    grid_x, grid_y: (ny, nx) meshgrid; phi: (ny, nx); field: (ny, nx, 2). Returns the PNG path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.4), constrained_layout=True)
    extent = (grid_x.min(), grid_x.max(), grid_y.min(), grid_y.max())
    limit = np.percentile(np.abs(phi), 99)
    image = left.imshow(phi, origin="lower", extent=extent, cmap="RdBu_r", vmin=-limit, vmax=limit)
    left.contour(grid_x, grid_y, phi, levels=21, colors="k", linewidths=0.4, alpha=0.6)
    fig.colorbar(image, ax=left, label="potential $\\phi$ (units of M x length)")
    left.set_title("scalar potential")
    magnitude = np.linalg.norm(field, axis=-1)
    floor = np.percentile(magnitude, 1)
    image = right.imshow(np.log10(np.maximum(magnitude, floor)), origin="lower", extent=extent, cmap="magma")
    right.streamplot(grid_x, grid_y, field[..., 0], field[..., 1], color="w", linewidth=0.6, density=1.3,
                     arrowsize=0.7)
    fig.colorbar(image, ax=right, label="$\\log_{10} |H|$ (units of M)")
    right.set_title("field H = -grad $\\phi$")
    for ax in (left, right):
        draw_sources(ax, sources, color="k" if ax is left else "w")
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
        ax.set_aspect("equal")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
