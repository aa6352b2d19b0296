"""Train a small PyTorch model on fieldbench data and score it with fieldbench: no JAX model needed.

    pip install "fieldbench[torch]"
    python examples/pytorch_training.py                  # circles2d-mini, 300 steps: seconds on a CPU
    python examples/pytorch_training.py --dataset circles2d --steps 5000 --out circles2d-predictions.npz

fieldbench's side is framework-neutral NumPy:

- ``fieldbench.datasets.iter_batches(dataset, "train", batch_size, shuffle=True, as_jax=False)``
  streams training batches as plain NumPy arrays, each batch owning its arrays (so
  ``torch.from_numpy`` shares them without a copy or a warning);
- ``fieldbench.datasets.load(dataset, split).points`` are the points to predict at, in the order
  the scorer expects: phi (samples, points) and H (samples, points, dim);
- ``fieldbench.evaluation.evaluate_predictions(dataset, split, phi, H)`` scores them with the
  paper's Eq. 10 metrics, by the code that scores a model in ``fieldbench evaluate``. The .npz this
  script writes scores the same from the command line:
  ``fieldbench evaluate --predictions predictions.npz --dataset circles2d-mini``.

The model: phi(r) = sum over the real sources k of m_k . g((r - c_k) / L, s_k / L), g an MLP of the
offset from the source's centre and of its size. Like the physics it is linear in each
magnetisation and a sum over sources (superposition); H = -grad(phi), by autograd. A few hundred
steps give errors of tens of percent: this shows the plumbing, not a good model.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from fieldbench.datasets import iter_batches, load
from fieldbench.evaluation import evaluate_predictions

SOURCE_KEYS = ("centers", "magnetisations", "sizes", "mask")


class SourceSum(torch.nn.Module):
    """phi = sum_k m_k . g(offset_k / L, size_k / L): additive and linear in the magnetisations."""

    def __init__(self, dim: int, width: int = 64, length_scale: float = 3.0):
        super().__init__()
        self.length_scale = length_scale
        self.g = torch.nn.Sequential(torch.nn.Linear(2 * dim, width), torch.nn.Tanh(),
                                     torch.nn.Linear(width, width), torch.nn.Tanh(), torch.nn.Linear(width, dim))

    def forward(self, centers, magnetisations, sizes, mask, points):
        """Sources (S, K, d) with mask (S, K) (padding False), points (S, N, d) -> phi (S, N)."""
        offset = (points[:, :, None, :] - centers[:, None, :, :]) / self.length_scale  # (S, N, K, d)
        size = (sizes / self.length_scale)[:, None].expand_as(offset)
        per_source = (self.g(torch.cat([offset, size], dim=-1)) * magnetisations[:, None]).sum(-1)  # (S, N, K)
        return (per_source * mask[:, None]).sum(-1)


def potential_and_field(model, arrays: dict, *, create_graph: bool):
    """phi (S, N) and H = -grad(phi) (S, N, d) at the points of NumPy ``arrays`` (a batch or a slice of load)."""
    # fieldbench stores sources in float64 and points in float32; the model runs in float32.
    sources = [torch.from_numpy(np.asarray(arrays[key])).float() for key in SOURCE_KEYS]
    points = torch.tensor(np.asarray(arrays["points"]), dtype=torch.float32, requires_grad=True)
    phi = model(*sources, points)
    # phi[s, n] depends on points[s, n] alone, so the gradient of the sum is every point's own gradient.
    (grad,) = torch.autograd.grad(phi.sum(), points, create_graph=create_graph)
    return phi, -grad


def train(dataset: str, dim: int, steps: int, batch_size: int, seed: int) -> SourceSum:
    torch.manual_seed(seed)
    model = SourceSum(dim)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    step, epoch = 0, 0
    while step < steps:
        # A new shuffle each epoch, reproducible from (seed, epoch).
        for batch in iter_batches(dataset, "train", batch_size, shuffle=True, seed=seed, epoch=epoch, as_jax=False):
            phi, field = potential_and_field(model, batch, create_graph=True)  # the loss needs grad of the grad
            phi_true, field_true = torch.from_numpy(batch["phi"]), torch.from_numpy(batch["field"])
            loss = (((phi - phi_true) ** 2).mean() / (phi_true ** 2).mean()
                    + ((field - field_true) ** 2).mean() / (field_true ** 2).mean())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            if step % 100 == 0 or step == steps:
                print(f"step {step}: relative squared error {loss.item():.4g}")
            if step == steps:
                break
        epoch += 1
    return model


def predict(model: SourceSum, data, chunk: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """phi (S, N) and H (S, N, d) at ``data.points`` (``fieldbench.datasets.load``), in that order."""
    phis, fields = [], []
    for start in range(0, len(data), chunk):
        rows = slice(start, start + chunk)
        arrays = {key: getattr(data, key)[rows] for key in (*SOURCE_KEYS, "points")}
        phi, field = potential_and_field(model, arrays, create_graph=False)
        phis.append(phi.detach().numpy())
        fields.append(field.detach().numpy())
    return np.concatenate(phis), np.concatenate(fields)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train a PyTorch model on a fieldbench dataset and score it.")
    parser.add_argument("--dataset", default="circles2d-mini", help="a standard dataset name or a dataset folder")
    parser.add_argument("--split", default="test_multi", help="the split to predict and score")
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=16, help="samples per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="predictions.npz", help="the predictions file to write")
    args = parser.parse_args(argv)

    data = load(args.dataset, args.split)  # the sources and points to predict at (targets unused here)
    model = train(args.dataset, data.points.shape[-1], args.steps, args.batch_size, args.seed)
    phi, field = predict(model, data)
    # The file format of `fieldbench evaluate --predictions` (docs/evaluation_input.md).
    np.savez(args.out, **{f"{args.split}/phi": phi, f"{args.split}/H": field})
    result = evaluate_predictions(args.dataset, args.split, phi, field, name="pytorch-source-sum")
    print(f"{args.split}: phi {result.phi_error:.3g}%, H {result.field_error:.3g}% (median relative error); "
          f"relative L2: phi {result.phi_relative_l2:.3g}%, H {result.field_relative_l2:.3g}%; wrote {args.out}")
    print(f"the same from the command line: fieldbench evaluate --predictions {args.out} --dataset {args.dataset}")
    return result


if __name__ == "__main__":
    main()
