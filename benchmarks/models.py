"""Encoding and evaluation at scale: ONE collection of M disc sources, N shared points, M = N.

Learned baselines are built at the ``quick`` preset: the size of the shipped checkpoints
(fieldbench/models/checkpoints) and the default of the scaling harness (fieldbench.evaluation._scaling).
At the paper's size, encoding M = 1e5 sources through the Fourier hypernetwork (4096 outputs per
source) alone takes ~10 s and 3.4 GB on one core, ~25 s with its warm-up in a quick run, more than
the whole smoke test can spend on one benchmark; the paper size is timed per training step in
``training.py``. The FMM (pyfmmlib, the paper's Fig. 5) runs on the same inputs. The inputs are
defined here, not taken from the scaling harness, so that a change there never moves this history.
"""

from . import _env  # noqa: F401  (first: pins thread counts before JAX and NumPy are imported)

from ._data import DOMAIN, block, disc_batch, memo, random_points, source_batch

MODELS = ["fourier", "fc-ilr", "fc-inr", "linear"]
SIZES = [10_000, 100_000]
PRESET = "quick"


def _model_case(name: str, size: int, step: str, preset: str = PRESET):
    """A jitted ``encode`` or ``evaluate`` of the model on its inputs, compiled and run once (warm-up,
    never timed). A code does not depend on M in shape, so ``evaluate`` gets the code of 1,000 of
    the sources instead of paying (and compiling) the full encoding first."""
    import equinox as eqx
    import jax.numpy as jnp

    from fieldbench.models import build_model

    try:
        model, _ = build_model(name, dim=2, length_scale=DOMAIN, preset=preset, seed=0)
    except ValueError as error:  # a commit before this model
        raise NotImplementedError(f"no {name} at this commit: {error}") from None
    encode = eqx.filter_jit(lambda m, b: m.encode(b))
    if step == "encode":
        batch = disc_batch(size)

        def run():
            return encode(model, batch)
    else:
        evaluate = eqx.filter_jit(lambda m, code, p: m.evaluate(code, p))
        code = block(encode(model, disc_batch(min(size, 1000))))
        points = jnp.asarray(random_points(size), jnp.float32)

        def run():
            return evaluate(model, code, points)

    block(run())
    return run


class Encode:
    """``model.encode(SourceBatch)`` under ``eqx.filter_jit``: the per-source hypernetwork on M
    sources, codes summed (O(M))."""

    params = (MODELS, SIZES)
    param_names = ["model", "M = N"]
    timeout = 300
    # Up to seconds per call at M = N = 1e5: at most 3 samples and one round bound the nightly run.
    repeat = (1, 3, 20.0)
    rounds = 1

    def setup(self, name, size):
        self.run = memo(("encode", name, size), lambda: _model_case(name, size, "encode"))

    def time_encode(self, name, size):
        block(self.run())


class Evaluate:
    """``model.evaluate(code, points)`` under ``eqx.filter_jit``: potential and field of one coded
    collection at N shared points (O(N))."""

    params = (MODELS, SIZES)
    param_names = ["model", "M = N"]
    timeout = 300
    repeat = (1, 3, 20.0)
    rounds = 1

    def setup(self, name, size):
        self.run = memo(("evaluate", name, size), lambda: _model_case(name, size, "evaluate"))

    def time_evaluate(self, name, size):
        block(self.run())


#: The model sized to outrun the FMM at M = N = 1e6 (README, "Faster than the FMM"), at its shipped
#: size, where that comparison is made.
FAST_MODEL, FAST_SIZES = "fc-ilr-bilinear-fast", [100_000, 1_000_000]


class FastEncode:
    """``fc-ilr-bilinear-fast`` (the shipped ``cpu`` size) encoding M sources, M = N = 1e5 and 1e6, the
    sizes of the frontier (the FMM's own timing is ``FMM``)."""

    params = FAST_SIZES
    param_names = ["M = N"]
    timeout = 300
    repeat = (1, 3, 30.0)  # seconds per call at 1e6: a few samples bound the nightly run
    rounds = 1

    def setup(self, size):
        self.run = memo(("encode", FAST_MODEL, size), lambda: _model_case(FAST_MODEL, size, "encode", "cpu"))

    def time_encode(self, size):
        block(self.run())


class FastEvaluate:
    """``fc-ilr-bilinear-fast`` evaluating its code at N points, N = 1e5 and 1e6."""

    params = FAST_SIZES
    param_names = ["M = N"]
    timeout = 300
    repeat = (1, 3, 30.0)
    rounds = 1

    def setup(self, size):
        self.run = memo(("evaluate", FAST_MODEL, size), lambda: _model_case(FAST_MODEL, size, "evaluate", "cpu"))

    def time_evaluate(self, size):
        block(self.run())


def _fmm_case(size: int, family: str = "disc", name: str = "fmm"):
    try:
        from fieldbench.models import build_reference
        try:
            from fieldbench.physics import fmm_available
        except ImportError:  # a commit before the FMM moved to fieldbench.physics.fmm
            from fieldbench.models._fmm import fmm_available
    except ImportError as error:  # a commit before the FMM baseline
        raise NotImplementedError(f"no FMM at this commit: {error}") from None
    if not fmm_available():
        raise NotImplementedError("pyfmmlib is not installed (pip install 'fieldbench[fmm]')")
    try:
        predictor = build_reference(name)
    except ValueError as error:  # a commit before this reference method
        raise NotImplementedError(f"no {name} at this commit: {error}") from None
    batch = source_batch(family, size)
    points = random_points(size)

    def run():
        return predictor.evaluate(predictor.encode(batch), points)

    try:
        run()  # compiles the exact near-field correction for these shapes
    except ValueError as error:  # a commit whose FMM does not take this family yet
        raise NotImplementedError(f"{name} cannot take {family} sources at this commit: {error}") from None
    return run


class FMM:
    """``FMMPredictor("corrected")`` (pyfmmlib, iprec=1, exact near-field correction): encode and
    evaluate the same inputs as ``Encode`` and ``Evaluate``. Skipped without pyfmmlib."""

    params = SIZES
    param_names = ["M = N"]
    timeout = 300
    repeat = (1, 3, 20.0)
    rounds = 1

    def setup(self, size):
        self.run = memo(("fmm", size), lambda: _fmm_case(size))

    def time_fmm(self, size):
        self.run()


class PrismFMM:
    """The corrected FMM on prisms, M = N = 3e4: each prism's multipoles handed to pyfmmlib as a
    ring of dipoles (``fmm``, to the FMM's own accuracy) or as its point dipole alone
    (``fmm-dipole``). The ring is what makes the corrected FMM ~10x the pure one on prisms
    (README, prisms2d at M = N = 1e6); this tracks that cost. Skipped without pyfmmlib."""

    params = [["fmm", "fmm-dipole"]]
    param_names = ["method"]
    timeout = 300
    repeat = (1, 3, 20.0)
    rounds = 1

    def setup(self, name):
        self.run = memo(("prism-fmm", name), lambda: _fmm_case(30_000, "prism", name))

    def time_fmm(self, name):
        self.run()


class ScalingInputs:
    """``fieldbench.evaluation.scaling_configuration``: the non-overlapping discs and the points
    (outside and inside the sources) of one scaling run at M = N = 1e6, the sizes of Fig. 5a.
    Generating them must stay linear in M (a grid, not rejection sampling), or the harness's own
    inputs would cost more than the methods it times."""

    params = [[False, True]]
    param_names = ["points inside"]
    timeout = 120

    def time_scaling_configuration(self, inside):
        from fieldbench.evaluation import scaling_configuration

        scaling_configuration(1_000_000, 1_000_000, points_inside=inside)
