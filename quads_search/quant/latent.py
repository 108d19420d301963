"""Quantized training through `torch.nn.utils.parametrize`, addressed by plain parameter names.

While a weight is parametrized, `module.weight` is computed from the trainable tensor
`module.parametrizations.weight.original` (a latent full-precision weight, or a codebook),
so every forward pass, in training and in evaluation, sees the quantized weight. Removing
the parametrization with `leave_parametrized=True` writes that quantized value into a plain
parameter again; the Parameter object keeps its identity throughout (parametrize moves data
with `set_`), so references to it stay valid.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize


def straight_through(latent: Tensor, quantized: Tensor) -> Tensor:
    """`quantized` in the forward pass; the backward pass hands the gradient to `latent` unchanged.

    Written as q + (w − w) rather than the usual w + (q − w): the latter differs from q by a
    rounding error, which would leave the materialised weights off their grid.
    """
    return quantized.detach() + (latent - latent.detach())


class HalfPrecision(nn.Module):
    """16-bit tensors: fp16 values in the forward pass, updates accumulate in the float32 latent.

    Rounding the stored weight to fp16 after every step would erase updates smaller than half
    an fp16 step (about 1.5e-5 at |w| = 0.05), as the in-place affine snap erased sub-level ones.
    """

    def forward(self, latent: Tensor) -> Tensor:
        return straight_through(latent, latent.detach().half().float())


def owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """(module, attribute) of a parameter given by its plain name, e.g. `encoder.layers.0.fc1.weight`."""
    path, _, attr = name.rpartition(".")
    return model.get_submodule(path), attr


def register(model: nn.Module, name: str, parametrization: nn.Module) -> None:
    module, attr = owner(model, name)
    parametrize.register_parametrization(module, attr, parametrization)


def original(model: nn.Module, name: str) -> nn.Parameter:
    """The trainable tensor behind a parametrized weight (latent weight or codebook)."""
    module, attr = owner(model, name)
    return module.parametrizations[attr].original


def materialize(model: nn.Module, name: str) -> None:
    """Replace the parametrized weight by a plain parameter holding its current (quantized) value."""
    module, attr = owner(model, name)
    parametrize.remove_parametrizations(module, attr, leave_parametrized=True)


def parametrized_names(model: nn.Module) -> list[str]:
    """Plain names of every parametrized tensor in `model` (none may reach a checkpoint or an export)."""
    return [f"{path}.{attr}" if path else attr for path, module in model.named_modules()
            if parametrize.is_parametrized(module) for attr in module.parametrizations]


def weight(model: nn.Module, name: str) -> Tensor:
    """The weight the forward pass uses (quantized while parametrized), detached."""
    module, attr = owner(model, name)
    with torch.no_grad():
        return getattr(module, attr).detach()
