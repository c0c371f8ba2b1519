r"""Self-calibration of one complex gain per frequency: :func:`frequency_gains`, :func:`calibrated`.

Measured multi-frequency data are calibrated against a model of the source (for the Institut
Fresnel files, a least-squares fit of the measured incident field to a 2-D line source), and that
fit leaves a complex gain error per frequency: a horn is not a line source, and the error differs
between frequencies. The data model then reads

.. math:: y_f = g_f\, A_f(\chi) + n_f, \qquad f = 1 \dots F,

with unknown gains ``g_f``. For a given prediction ``a = A(χ)`` the least-squares gains are
``ĝ_f = ⟨a_f, y_f⟩ / ‖a_f‖²`` (over the measured entries of frequency ``f``). Fitting them freely
would make the contrast's overall level unidentifiable (in the Born limit ``g A(χ) = A(g χ)``), so
the gains are **normalised to a geometric mean of one**,

.. math:: g_f = \hat g_f \Big/ \Big(\prod_{f'} \hat g_{f'}\Big)^{1/F},

which corrects the *relative* errors between frequencies and trusts the source calibration on
average; with one frequency ``g = 1`` (nothing to calibrate). The calibrated misfit
``½ Σ_f ‖y_f − g_f a_f‖²`` is a smooth function of ``a``: gradients flow through ``g`` (autograd).
"""

from __future__ import annotations

import torch

__all__ = ["calibrated", "frequency_gains"]


def frequency_gains(pred: torch.Tensor, y: torch.Tensor, labels: torch.Tensor, n: int) -> torch.Tensor:
    """The normalised least-squares gains ``g (n,)`` of the module docstring.

    Parameters
    ----------
    pred : complex, any shape — the model's prediction ``A(χ)`` (zero where not measured)
    y : complex, ``pred``'s shape — the measurements (zero where not measured)
    labels : integer, ``pred``'s shape (or broadcastable to it) — each entry's frequency, ``0 … n−1``
    n : the number of frequencies

    Returns
    -------
    complex ``(n,)``, ``pred``'s dtype; differentiable in ``pred``. A frequency whose prediction is
    zero (no measured entry, or a zero image) gets the gain 1 and is left out of the normalisation.
    """
    lab = torch.broadcast_to(labels, pred.shape).reshape(-1)
    p, d = pred.reshape(-1), y.reshape(-1).to(pred.dtype)
    num = torch.zeros(n, dtype=pred.dtype, device=pred.device).index_add(0, lab, p.conj() * d)
    real = torch.view_as_real(p)
    den = torch.zeros(n, dtype=real.dtype, device=pred.device).index_add(0, lab, real.square().sum(-1))
    ok = den > 0  # no host sync: this runs at every step of a fit
    log_g = torch.where(ok, torch.log(torch.where(ok, num / torch.where(ok, den, 1.0), 1.0)), 0.0)
    mean = log_g.sum() / ok.sum().clamp(min=1)
    return torch.exp(torch.where(ok, log_g - mean, 0.0))


def calibrated(pred: torch.Tensor, y: torch.Tensor, labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g_f · pred, g)``: the prediction with each frequency scaled by its gain (:func:`frequency_gains`)."""
    g = frequency_gains(pred, y, labels, n)
    return pred * g[torch.broadcast_to(labels, pred.shape)], g
