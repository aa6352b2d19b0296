"""pyfmmlib, the optional FMM backend: importing it, its OpenMP thread count, and its one call.

Everything that touches pyfmmlib or its bundled OpenMP runtime (ctypes) lives here; the algorithm
(``_algorithm``) only calls :func:`fmm_available`, :func:`require_pyfmmlib`, :func:`omp_threads`
and :func:`lfmm_dipoles`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import math
import os
import warnings

import numpy as np

__all__ = ["fmm_available", "require_pyfmmlib", "omp_threads", "lfmm_dipoles"]


def fmm_available() -> bool:
    """Whether pyfmmlib (the optional FMM backend) can be imported."""
    try:
        require_pyfmmlib()
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def require_pyfmmlib():
    """pyfmmlib's compiled module; ImportError naming the ``fmm`` extra when it is not installed."""
    try:
        import pyfmmlib._internal as internal
    except ImportError as error:
        raise ImportError(
            "the FMM baseline needs pyfmmlib, which is not installed: pip install 'fieldbench[fmm]'"
        ) from error
    return internal


@functools.lru_cache(maxsize=1)
def _openmp():
    """pyfmmlib's own OpenMP runtime (bundled next to it), to set its thread count; or None."""
    try:
        import pyfmmlib
    except ImportError:
        return None
    folder = os.path.join(os.path.dirname(os.path.dirname(pyfmmlib.__file__)), "pyfmmlib.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libgomp*.so*"))) or ["libgomp.so.1"]:
        try:
            library = ctypes.CDLL(path)
            library.omp_get_max_threads.restype = ctypes.c_int
            library.omp_set_num_threads.argtypes = [ctypes.c_int]
            return library
        except OSError:
            continue
    return None


@contextlib.contextmanager
def omp_threads(count: int | None):
    """Run the ``with`` block with pyfmmlib's OpenMP thread count set to ``count`` (None: leave it),
    restoring the previous count afterwards. Warns when the runtime cannot be found."""
    if count is None:
        yield
        return
    library = _openmp()
    if library is None:
        # stacklevel 4: this generator, contextlib's __enter__, the solver, then the caller.
        warnings.warn("cannot set pyfmmlib's thread count (its OpenMP runtime was not found); "
                      "set OMP_NUM_THREADS before starting Python instead", RuntimeWarning, stacklevel=4)
        yield
        return
    previous = library.omp_get_max_threads()
    library.omp_set_num_threads(int(count))
    try:
        yield
    finally:
        library.omp_set_num_threads(previous)


def lfmm_dipoles(iprec, positions, moments, targets, *, at_sources=False, hessians=False):
    """One ``lfmm2dparttarg`` call on point dipoles.

    positions (C, 2) and complex moments p_x + i p_y (C,); targets (T, 2). Returns
    (source values or None, target values or None), each a tuple (phi, f1, f2) of the analytic
    derivatives: phi, f1 = phi_x - i phi_y, f2 = phi_xx - i phi_xy (f2 None unless ``hessians``).
    Evaluation at sources excludes self-interaction; ``hessians`` applies to both. With
    ``dipstr = -1/(2 pi)`` pyfmmlib's potential is the 2D dipole potential ``p.d / (2 pi |d|^2)``
    (see ``_algorithm``).
    """
    internal = require_pyfmmlib()
    count, ntarget = len(positions), len(targets)
    source = np.asfortranarray(positions.T, dtype=np.float64)
    dipvec = np.asfortranarray(np.stack([moments.real, moments.imag]), dtype=np.float64)
    dipstr = np.full(count, -1.0 / math.tau, dtype=np.complex128)
    charge = np.zeros(count, dtype=np.complex128)
    alloc = max(ntarget, 1)
    target = np.asfortranarray(targets.T, dtype=np.float64) if ntarget else np.zeros((2, 1), order="F")
    on_targets = int(ntarget > 0)
    ier, pot, fld, hess, pottarg, fldtarg, hesstarg = internal.lfmm2dparttarg(
        int(iprec), source, 0, charge, 1, dipstr, dipvec,
        int(at_sources), int(at_sources), int(at_sources and hessians),
        ntarget, target,
        on_targets, np.zeros(alloc, np.complex128),
        on_targets, np.zeros((2, alloc), np.complex128, order="F"),
        int(on_targets and hessians), np.zeros((3, alloc), np.complex128, order="F"),
    )
    if ier:
        raise RuntimeError(f"pyfmmlib lfmm2dparttarg failed with error code {ier} (out of memory?)")

    def unpack(p, g, h):
        f2 = (h[0].real - 1j * h[1].real) if hessians else None
        return p.real.copy(), g[0].real - 1j * g[1].real, f2

    at = unpack(pot, fld, hess) if at_sources else None
    return at, (unpack(pottarg[:ntarget], fldtarg[:, :ntarget], hesstarg[:, :ntarget]) if ntarget else None)
