r"""Self-calibration of one complex gain per frequency: :func:`frequency_gains`, :func:`calibrated`.

Measured multi-frequency data are calibrated against a model of the source (for the Institut
Fresnel files, a least-squares fit of the measured incident field to a 2-D line source), and that
fit leaves a complex gain error per frequency: a horn is not a line source, and the error differs
between frequencies. The data model then reads

.. math:: y_f = g_f\, A_f(\chi) + n_f, \qquad f = 1 \dots F,

with unknown gains ``g_f``. For a given prediction ``a = A(χ)`` the least-squares gains are
``ĝ_f = ⟨a_f, y_f⟩ / ‖a_f‖²`` (over the measured entries of frequency ``f``). Fitting them freely
would make the contrast's overall level unidentifiable (in the Born limit ``g A(χ) = A(g χ)``), so
the gains are **normalised to a median of one**,

.. math:: g_f = \hat g_f \big/ \exp\big(\operatorname{med}_{f'} \operatorname{Re}\log \hat g_{f'}
    + j \operatorname{med}_{f'} \operatorname{Im}\log \hat g_{f'}\big),

(the median of an even count is the mean of the middle two), which corrects the *relative* errors
between frequencies and trusts the source calibration of the typical frequency; with one frequency
``g = 1`` (nothing to calibrate), with two the median is the geometric mean.

Why the median and not the geometric mean: one frequency that the model explains badly (a
calibration or model error of its own) should not move the level of all the others. On the
Institut Fresnel disk (1–4 GHz) the 1 GHz gain comes out at 0.70 against 1.06–1.22 at the other
frequencies; normalised to their geometric mean it lifted the others' gains by ~10 % and the
fitted disk's loss with them (mean χ 1.97 − 0.46j); normalised to the median, 2.14 − 0.31j
(truth 2 ± 0.3, lossless; docs/notes.md). The calibrated misfit ``½ Σ_f ‖y_f − g_f a_f‖²`` is a
continuous, almost-everywhere smooth function of ``a``: gradients flow through ``g`` (autograd).
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
    complex ``(n,)``, ``pred``'s dtype, normalised to a median of one; differentiable in ``pred``. A
    frequency whose prediction is zero (no measured entry, or a zero image) gets the gain 1 and is
    left out of the normalisation.
    """
    lab = torch.broadcast_to(labels, pred.shape).reshape(-1)
    p, d = pred.reshape(-1), y.reshape(-1).to(pred.dtype)
    num = torch.zeros(n, dtype=pred.dtype, device=pred.device).index_add(0, lab, p.conj() * d)
    real = torch.view_as_real(p)
    den = torch.zeros(n, dtype=real.dtype, device=pred.device).index_add(0, lab, real.square().sum(-1))
    ok = den > 0  # no host sync: this runs at every step of a fit
    log_g = torch.where(ok, torch.log(torch.where(ok, num / torch.where(ok, den, 1.0), 1.0)), 0.0)
    level = torch.complex(_median(log_g.real, ok), _median(log_g.imag, ok))
    return torch.exp(torch.where(ok, log_g - level, 0.0))


def _median(v: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """The median of ``v[ok]`` (the mean of the middle two for an even count; 0 when none), no host sync."""
    s = torch.sort(torch.where(ok, v, torch.inf)).values
    k = ok.sum()
    mid = torch.stack(((k - 1).clamp(min=0) // 2, k // 2)).clamp(max=v.numel() - 1)
    return torch.where(k > 0, s.gather(0, mid).mean(), 0.0)


def calibrated(pred: torch.Tensor, y: torch.Tensor, labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g_f · pred, g)``: the prediction with each frequency scaled by its gain (:func:`frequency_gains`)."""
    g = frequency_gains(pred, y, labels, n)
    return pred * g[torch.broadcast_to(labels, pred.shape)], g
