"""Model names, user models loaded by path, and checkpoints (equinox leaves + a JSON of provenance)."""

from __future__ import annotations

import importlib.util
import inspect
import json
import subprocess
import sys
from pathlib import Path

import equinox as eqx

from .._io import file_sha256, sha256_bytes
from .._version import __version__
from ..exceptions import InvalidModelError
from ._baselines import FCILR, FCINR, PRESETS, FourierHypernetwork, LinearModel
from ._protocol import Predictor, SourceFieldModel
from ._reference import ExactPredictor, FMMPredictor

__all__ = [
    "LEARNED", "REFERENCE", "model_names", "model_class", "build_model", "build_reference", "save_checkpoint",
    "load_checkpoint", "load_predictor", "code_location", "git_commit",
]

#: Learned baselines: name -> (class, fixed hyperparameters).
LEARNED: dict[str, tuple[type[SourceFieldModel], dict]] = {
    "fourier": (FourierHypernetwork, {"variant": "paper"}),
    "fourier-harmonic": (FourierHypernetwork, {"variant": "harmonic"}),
    "fourier-bilinear": (FourierHypernetwork, {"variant": "paper", "head": "bilinear"}),
    "fc-ilr": (FCILR, {}),
    "fc-ilr-bilinear": (FCILR, {"head": "bilinear"}),
    "fc-ilr-bilinear-fast": (FCILR, {"head": "bilinear"}),
    "fc-ilr-bilinear-wide": (FCILR, {"head": "bilinear"}),
    "fc-inr": (FCINR, {}),
    "linear": (LinearModel, {}),
}
#: Non-learned references.
REFERENCE = {
    "exact": lambda: ExactPredictor(),
    "fmm": lambda: FMMPredictor("corrected"),
    "fmm-dipole": lambda: FMMPredictor("corrected", prism_order=1),
    "fmm-pure": lambda: FMMPredictor("pure"),
}


def model_names() -> list[str]:
    return list(LEARNED) + list(REFERENCE)


def _load_user_class(spec: str) -> type:
    path_text, _, class_name = spec.rpartition(":")
    path = Path(path_text)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found (expected 'path/to/file.py:ClassName')")
    module_name = f"fieldbench_user_{sha256_bytes(str(path.resolve()).encode())[:12]}"
    # Import a file once (again only if it changed): re-executing it would make a new class per call,
    # and models built, trained and loaded from one spec would then be different pytree types.
    digest = file_sha256(path)
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__fieldbench_sha256__", None) != digest:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        module.__fieldbench_sha256__ = digest
    if not hasattr(module, class_name):
        raise ValueError(f"{path} defines no {class_name!r}; classes there: "
                         + ", ".join(n for n, v in vars(module).items() if inspect.isclass(v)))
    cls = getattr(module, class_name)
    if not (inspect.isclass(cls) and issubclass(cls, SourceFieldModel)):
        raise InvalidModelError(f"{spec} must be a subclass of fieldbench.models.SourceFieldModel "
                        "(see examples/my_model.py)")
    if not hasattr(cls, "create"):
        raise InvalidModelError(f"{spec} needs a classmethod create(*, dim, length_scale, key, **hyperparameters)")
    return cls


def model_class(spec: str) -> tuple[type, dict]:
    """(class, fixed hyperparameters) for a baseline name or a user model 'file.py:Class'."""
    if spec in LEARNED:
        return LEARNED[spec]
    if ":" in spec and spec.split(":")[0].endswith(".py"):
        return _load_user_class(spec), {}
    if spec in REFERENCE:
        raise ValueError(f"{spec!r} is a reference method (no weights to build, train or load); learned baselines: "
                         f"{', '.join(LEARNED)}, or a user model 'path/to/file.py:ClassName'")
    raise ValueError(f"unknown model {spec!r}; learned baselines: {', '.join(LEARNED)}, or a user model "
                     "'path/to/file.py:ClassName'")


def build_model(spec: str, *, dim: int = 2, length_scale: float = 1.0, preset: str = "quick", seed: int = 0,
                **overrides) -> tuple[SourceFieldModel, dict]:
    """A fresh learned model and the full hyperparameters that rebuild it."""
    cls, fixed = model_class(spec)
    presets = PRESETS.get(spec, {})
    if presets and preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; {spec} has {list(presets)}")
    hyperparameters = dict(presets.get(preset, {})) | fixed | overrides
    model = cls.create(dim=dim, length_scale=length_scale, key=seed, **hyperparameters)
    return model, hyperparameters | {"dim": dim, "length_scale": length_scale}


def build_reference(spec: str) -> Predictor:
    if spec not in REFERENCE:
        raise ValueError(f"{spec!r} is not a reference method; references: {', '.join(REFERENCE)}")
    return REFERENCE[spec]()


def code_location(spec: str) -> dict:
    """Where a model's code lives and a hash of it (for provenance)."""
    cls, _ = model_class(spec)
    source_file = Path(inspect.getsourcefile(cls))
    return {"module": cls.__module__ if spec in LEARNED else str(source_file), "class": cls.__qualname__,
            "sha256": file_sha256(source_file)}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(spec: str, model: SourceFieldModel, hyperparameters: dict, handle, training: dict) -> dict:
    """What every trained checkpoint records besides its leaves: model, properties, code, dataset,
    training configuration, git commit and device (``handle``: the training dataset's)."""
    import jax

    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
    return {
        "model": spec, "hyperparameters": hyperparameters,
        "properties": {"additive": bool(model.additive), "harmonic": bool(model.harmonic),
                       "parameters": int(sum(x.size for x in leaves))},
        "code": code_location(spec),
        "dataset": {"name": handle.spec.name, "content_sha256": handle.card.content_sha256},
        "training": training, "git_commit": git_commit(), "device": str(jax.devices()[0]),
    }


def save_checkpoint(path: str | Path, model: SourceFieldModel, info: dict) -> Path:
    """Write ``path`` (.eqx leaves) and ``path.with_suffix('.json')`` (hyperparameters, provenance).

    Both are written under temporary names and renamed, so an interrupted save never leaves a
    half-written checkpoint in place of a good one. Returns the .eqx path.
    """
    path = Path(path).with_suffix(".eqx")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    eqx.tree_serialise_leaves(temporary, model)
    digest = file_sha256(temporary)
    meta = {"fieldbench_version": __version__, "checkpoint_sha256": digest} | info
    meta_path = path.with_suffix(".json")
    meta_temporary = meta_path.with_name(f".{meta_path.name}.tmp")
    meta_temporary.write_text(json.dumps(meta, indent=1, default=str))
    temporary.replace(path)
    meta_temporary.replace(meta_path)
    return path


def load_checkpoint(path: str | Path, model_spec: str | None = None) -> tuple[SourceFieldModel, dict]:
    """Rebuild a model from its checkpoint (the JSON names the model unless ``model_spec`` is given)."""
    path = Path(path).with_suffix(".eqx")
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise FileNotFoundError(f"checkpoint {path} (and its {meta_path.name}) not found")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{meta_path} is not valid JSON ({error}): the checkpoint's metadata is damaged; restore it "
                         "or retrain the checkpoint") from None
    if "checkpoint_sha256" not in meta:
        raise ValueError(f"{meta_path.name} records no checkpoint_sha256, so {path.name} cannot be checked; write "
                         "checkpoints with fieldbench.models.save_checkpoint (or fieldbench train)")
    if meta["checkpoint_sha256"] != file_sha256(path):
        raise ValueError(f"checkpoint {path} does not match the sha256 recorded in {meta_path.name}: corrupted")
    # User models are named by path, which may be spelt differently: compare their class names.
    if model_spec and meta.get("model") and model_spec.rpartition(":")[2] != str(meta["model"]).rpartition(":")[2]:
        raise ValueError(f"checkpoint {path} belongs to model {meta['model']!r}, not {model_spec!r}; load it as "
                         f"{meta['model']!r}")
    spec = model_spec or meta["model"]
    hyperparameters = dict(meta["hyperparameters"])
    cls, _ = model_class(spec)
    dim = hyperparameters.pop("dim")
    length_scale = hyperparameters.pop("length_scale")
    skeleton = cls.create(dim=dim, length_scale=length_scale, key=0, **hyperparameters)
    return eqx.tree_deserialise_leaves(path, skeleton), meta


def load_predictor(spec: str, checkpoint: str | Path | None = None) -> Predictor:
    """Any model for evaluation: a reference by name, or a learned model from its checkpoint."""
    if spec in REFERENCE:
        return build_reference(spec)
    if checkpoint is None:
        raise ValueError(f"{spec} is a learned model: pass its checkpoint (--checkpoint FILE)")
    return load_checkpoint(checkpoint, spec)[0]
