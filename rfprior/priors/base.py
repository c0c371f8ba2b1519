r"""The :class:`Prior` base class: a seeded network with a fixed input that emits a complex image.

A prior is a ``torch.nn.Module`` ``f_θ`` with a fixed random input ``z`` (the buffer
``prior.z``); ``prior()`` returns the complex image ``f_θ(z)`` of shape ``(B, H, W)``
(``B = z.shape[0]``, usually 1) in the complex counterpart of the parameters' dtype
(``complex64`` for ``float32`` parameters, ``complex128`` after ``.double()``).

Contract shared by every prior (the engine relies on it):

* ``Prior(shape, head=..., seed=..., **sizes)``; ``shape = (H, W)`` may be any size:
  the network is built on a padded grid that its up/down-sampling supports and the
  output is centre-cropped to ``(H, W)``.
* ``seed`` fixes both the input ``z`` and the initial weights: two priors built with
  the same arguments give bit-identical outputs on the same machine; the global torch
  random state is neither used nor changed.
* ``forward(z=None)`` accepts a perturbed input (the engine adds input jitter itself,
  ``prior(prior.z + std * noise)``); ``z`` must have the shape of ``prior.z`` apart
  from the batch axis.
* ``prior.to(device)`` moves parameters and every fixed tensor (input, filter kernels).
* ``prior.config`` holds the constructor arguments; ``make_prior(**prior.config)``
  rebuilds the same prior.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import nn

from .heads import ALL_HEADS

__all__ = ["Prior", "padded_size", "center_crop", "seeded_init", "check_positive_int"]


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum``; raises ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    return int(value)


def _check_shape(shape: Any) -> tuple[int, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise ValueError(f"shape must be a pair (H, W) of positive ints, got {shape!r}")
    return (check_positive_int(shape[0], "shape[0] (H)"), check_positive_int(shape[1], "shape[1] (W)"))


def padded_size(n: int, levels: int, min_coarse: int = 2) -> int:
    """Smallest ``m ≥ n`` with ``m = c · 2**levels`` and ``c ≥ min_coarse``.

    The coarsest grid of a network with ``levels`` factor-2 resamplings then has
    ``c`` pixels per side; ``c ≥ 2`` keeps reflection padding of 3×3 convs valid.
    """
    step = 2**levels
    return max(min_coarse, math.ceil(n / step)) * step


def center_crop(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Crop the last two axes of ``x`` to ``shape`` about the centre (offset ``(size − target) // 2``)."""
    h, w = shape
    H, W = x.shape[-2], x.shape[-1]
    if (H, W) == (h, w):
        return x
    top, left = (H - h) // 2, (W - w) // 2
    return x[..., top : top + h, left : left + w]


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Run a block with the CPU default generator seeded by ``seed``, restoring its state afterwards.

    Layers built inside the block draw their default initial weights from this stream,
    so construction is deterministic and leaves the caller's random state untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


class Prior(nn.Module):
    """Base class of every untrained-network prior (see the module docstring for the contract).

    Subclasses call ``super().__init__(shape, head, seed)``, then draw their input with
    ``_init_input`` (which returns the weight seed) and build their layers inside
    ``with seeded_init(weight_seed):``,
    set ``self.config`` entries for their sizes, and implement ``_image``.

    Attributes
    ----------
    shape : (H, W)
        Output image size in pixels.
    head : str
        ``"real_imag"``, ``"complex"``, ``"amp_phase"`` or ``"sigmoid"`` (real image in (0, 1));
        see :mod:`rfprior.priors.heads`.
    seed : int
        Seeds the input and the weights.
    z : Tensor (buffer)
        The fixed network input, ``(1, C, h, w)``, real.
    """

    name: ClassVar[str] = "prior"
    allowed_heads: ClassVar[tuple[str, ...]] = ALL_HEADS

    z: torch.Tensor

    def __init__(self, shape: tuple[int, int], head: str = "real_imag", seed: int = 0) -> None:
        super().__init__()
        self.shape: tuple[int, int] = _check_shape(shape)
        if not isinstance(head, str) or head not in self.allowed_heads:
            raise ValueError(f"{type(self).__name__}: head must be one of {self.allowed_heads}, got {head!r}")
        self.head: str = head
        self.seed: int = check_positive_int(seed, "seed", minimum=0)
        self.config: dict[str, Any] = {"name": self.name, "shape": self.shape, "head": head, "seed": self.seed}

    # ------------------------------------------------------------------ construction helpers
    def _init_input(self, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0) -> int:
        """Register ``self.z ~ U(low, high)`` of ``shape`` drawn from :attr:`seed`; return the weight seed.

        The weight seed is the next draw of the same generator, so input and weights
        come from one seeded stream without being copies of each other.
        """
        g = torch.Generator().manual_seed(self.seed)
        z = low + (high - low) * torch.rand(shape, generator=g)
        self.register_buffer("z", z)
        return int(torch.randint(0, 2**62, (1,), generator=g))

    # ------------------------------------------------------------------ public API
    @property
    def num_parameters(self) -> int:
        """Number of trainable real scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _image(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Complex image ``(B, H_pad, W_pad)`` on the padded grid."""
        raise NotImplementedError

    def forward(self, z: torch.Tensor | None = None) -> torch.Tensor:
        """The complex image ``f_θ(z)``, shape ``(B, H, W)``.

        Parameters
        ----------
        z : real tensor of shape ``(B, *prior.z.shape[1:])``, optional
            Network input; ``None`` uses the fixed input ``prior.z``.
        """
        if z is None:
            z = self.z
        else:
            if not isinstance(z, torch.Tensor):
                raise TypeError(f"{type(self).__name__}: z must be a torch.Tensor, got {type(z).__name__}")
            if z.ndim != self.z.ndim or tuple(z.shape[1:]) != tuple(self.z.shape[1:]):
                raise ValueError(
                    f"{type(self).__name__}: z must have shape (B, {', '.join(map(str, self.z.shape[1:]))}), "
                    f"got {tuple(z.shape)}"
                )
            if not z.is_floating_point():
                raise TypeError(f"{type(self).__name__}: z must be a real floating tensor, got {z.dtype}")
        return center_crop(self._image(z), self.shape)

    def extra_repr(self) -> str:
        sizes = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "name")
        return f"{sizes}, num_parameters={self.num_parameters}"
