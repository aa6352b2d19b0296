"""Validation during the fit: Eq. 10 on validation sources, alone and packed into multi-source scenes."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ...metrics import median_relative_error
from ...sources import Sources, pairwise_overlaps
from ._config import FitConfig
from ._targets import _features, _Targets


#: Most sources in one multi-source validation scene (see _validator).
VALIDATION_GROUP = 6


def _scenes(split, rows, most: int) -> np.ndarray:
    """Scene index of each row: rows packed first-fit into scenes of at most ``most`` sources whose
    interiors do not overlap, like a multi-source test split (dense, touching allowed)."""
    table = pairwise_overlaps(Sources(split.family[rows, 0], split.centers[rows, 0], split.magnetisations[rows, 0],
                                      split.sizes[rows, 0]))
    scenes: list[list[int]] = []
    for index in range(len(rows)):
        home = next((scene for scene in scenes if len(scene) < most and not table[index, scene].any()), None)
        if home is None:
            scenes.append(home := [])
        home.append(index)
    label = np.empty(len(rows), dtype=np.int64)
    for number, scene in enumerate(scenes):
        label[scene] = number
    return label


def _validator(model_ref, data: _Targets, val_split, points, config: FitConfig):
    """Eq. 10 on validation sources at the fixed points, from the current (unfolded) model: single
    sources, and scenes of up to ``VALIDATION_GROUP`` non-overlapping ones (``multi_*``; exact
    targets by superposition). The train and val splits hold single sources; the scenes say how
    the codes add up, which is what test_multi scores, without looking at any test split."""
    rows = np.arange(min(config.validation_samples, len(val_split)))
    phi, field = data.exact(rows, points, val_split)
    fixed_points = jnp.asarray(points, jnp.float32)
    features = _features(model_ref["model"], val_split, rows)
    scene = _scenes(val_split, rows, VALIDATION_GROUP)
    crowded = np.isin(scene, np.flatnonzero(np.bincount(scene) >= 2))  # scenes of one source are not multi

    def summed(values):
        total = np.zeros((scene.max() + 1,) + values.shape[1:])
        np.add.at(total, scene[crowded], values[crowded])
        return total[np.unique(scene[crowded])]

    def validate(model, whiten=None):
        whiten = model_ref["whiten"] if whiten is None else whiten
        codes = np.asarray(model.encode_sources(features.reshape(-1, features.shape[-1])))
        codes = codes.reshape(len(rows), -1, codes.shape[-1]).sum(1) @ whiten.T
        psi, gradient = (np.asarray(a, np.float64) for a in model.basis_and_gradient(fixed_points))
        phi_hat = codes @ psi.T
        field_hat = -np.einsum("nld,bl->bnd", gradient, codes)
        record = {"phi_error": median_relative_error(phi_hat, phi, vector=False)[0],
                  "field_error": median_relative_error(field_hat, field, vector=True)[0]}
        if crowded.any():
            record |= {"multi_phi_error": median_relative_error(summed(phi_hat), summed(phi), vector=False)[0],
                       "multi_field_error": median_relative_error(summed(field_hat), summed(field), vector=True)[0]}
        return record

    return validate
