r"""Full-wave 2-D TM scattering: the Lippmann–Schwinger volume integral equation.

Time dependence ``exp(+jωt)``, free-space background of wavenumber ``k = 2πf/c``,
contrast ``χ = ε_r − 1`` (a lossy object has ``Im χ < 0``). The total field ``u`` of a
line source at ``t`` satisfies

.. math::

    u(r) = u_{\text{inc}}(r) + k^2 \int G(|r - r'|)\, \chi(r')\, u(r')\, dr', \qquad
    G(d) = -\tfrac{j}{4} H_0^{(2)}(k d), \qquad u_{\text{inc}}(r) = G(|r - t|),

and the scattered field at a receiver ``r`` is ``E_s(r) = k² ∫ G(|r − p|) χ(p) u(p) dp``.
On the image grid (square pixels of pitch ``h``, area ``ΔA = h²``) each pixel is integrated
as a disk of equal area (radius ``a = h/√π``; Richmond 1965):

.. math::

    \int_{\text{cell}} G(|p - r'|)\,dr' =
    \begin{cases}
      \frac{2\pi a}{k} J_1(k a)\, G(|p - p'|) & p \ne p' \\
      -\frac{j\pi a}{2k} H_1^{(2)}(k a) - \frac{1}{k^2} & p = p'
    \end{cases}

so ``u = u_inc + G_D(χ u)`` with ``G_D`` a discrete convolution, applied by FFT on a grid
zero-padded to ``(2H, 2W)``, and solved for all transmitters and frequencies at once by
batched BiCGSTAB (:func:`operators.krylov.bicgstab`), warm-started from the previous
solution of the same shape.

**Output scale.** The operator returns ``y = E_s / c_f`` with ``c_f = −j k ΔA / (8π)`` per
frequency: for small ``χ`` it tends to :class:`operators.MIMORadar` with
``spreading="hankel"`` (its Born limit; they differ by the cell-integration factor
``2J_1(ka)/(ka) ≈ 1 − (ka)²/8``), so one calibrated file serves Born and full-wave physics.

**Gradients** by the adjoint-state method (one adjoint solve per forward solve, never
by differentiating through the Krylov iterations): with ``y = G_S(χ u)``,

.. math::

    \frac{\partial y}{\partial \chi} = G_S\,(I - \operatorname{diag}(\chi) G_D)^{-1} \operatorname{diag}(u),
    \qquad
    \nabla_\chi = \bar u \odot (I - G_D^H \operatorname{diag}(\bar\chi))^{-1} G_S^H\, g ,

summed over transmitters and frequencies (``g`` the gradient with respect to ``y``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .arrays import as_frequencies, as_grid, as_positions
from .base import LinearOperator
from .krylov import ConvergenceError, KrylovInfo, bicgstab
from .mimo_steering import SPEED_OF_LIGHT

__all__ = ["ConvergenceError", "FieldBorn", "LippmannSchwinger", "green_2d"]


def green_2d(k: float, d: np.ndarray) -> np.ndarray:
    """The 2-D free-space Green's function ``G(d) = −(j/4) H0⁽²⁾(k d)`` (complex128; ``d > 0`` in metres)."""
    from scipy.special import hankel2

    return -0.25j * hankel2(0, k * np.asarray(d, dtype=np.float64))


def _cell_kernel(k: float, h: float, dz: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """``∫_cell G`` at pixel offsets ``(dz, dx)`` (in pixels), the cell a disk of area ``h²``."""
    from scipy.special import hankel2, j1

    a = h / math.sqrt(math.pi)
    rho = h * np.hypot(dz, dx)
    out = np.empty(rho.shape, dtype=np.complex128)
    far = rho > 0
    out[far] = (2 * math.pi * a / k) * j1(k * a) * green_2d(k, rho[far])
    out[~far] = -0.5j * math.pi * a / k * hankel2(1, k * a) - 1.0 / k**2
    return out


class FieldBorn(LinearOperator):
    r"""``χ ↦ G_S(χ · u)`` for a fixed field ``u`` (linear in ``χ``).

    With ``u`` the incident field this is the first Born approximation; with the total
    field of a previous estimate it is the Born iterative method's linear step.

    Parameters
    ----------
    scattering : the :class:`LippmannSchwinger` operator whose ``G_S`` is used
    field : complex tensor ``(F, T, H, W)``
    """

    def __init__(self, scattering: LippmannSchwinger, field: torch.Tensor) -> None:
        super().__init__(
            scattering.in_shape, scattering.out_shape, scattering.dims,
            dtype=scattering.dtype, device=scattering.device, spatial_dims=scattering.spatial_dims,
        )  # fmt: skip
        expect = (scattering.n_freq, scattering.n_tx, *scattering.in_shape)
        if tuple(field.shape) != expect:
            raise ValueError(f"FieldBorn: field must have shape {expect} (F, T, H, W), got {tuple(field.shape)}")
        self.scattering = scattering
        self.field = field.to(device=scattering.device, dtype=scattering.dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scattering.green_data(x[..., None, None, :, :] * self.field)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return (self.field.conj() * self.scattering.green_data_adjoint(y)).sum(dim=(-4, -3))

    def normal_diagonal(self) -> torch.Tensor:
        """The exact diagonal of ``AᴴA``: ``Σ_f (Σ_t |u[f,t,p]|²)(Σ_r |G_S[f,r,p]|²)``."""
        field = (self.field.abs() ** 2).sum(dim=1)  # (F, H, W)
        data = (self.scattering.radiation_matrix.abs() ** 2).sum(dim=1).reshape(field.shape)  # (F, H, W)
        return (field * data).sum(dim=0).to(self.real_dtype)


class LippmannSchwinger(LinearOperator):
    r"""Full-wave 2-D TM scattering ``χ ↦ y`` (nonlinear in ``χ``).

    Parameters
    ----------
    tx : ``(T, 2)`` transmitter (line-source) positions ``(x, z)`` in metres
    rx : ``(R, 2)`` receiver positions in metres (outside the image grid)
    frequencies : ``(F,)`` Hz
    x, z : pixel-centre coordinates in metres, uniform with one common pitch ``h``
    dtype : ``torch.complex64`` (default) or ``torch.complex128``
    device : where the tensors live
    tol : relative residual each field solve must reach (default 1e-4 in complex64, 1e-9 in complex128)
    max_iter : BiCGSTAB iterations before :class:`ConvergenceError`

    Each solve starts from the previous solution of the same batch shape (a fit's consecutive
    iterates differ little: 2–5 BiCGSTAB iterations instead of 5–15), so a repeated call agrees
    with the first to within ``tol``, not bit for bit; use complex128 and a small ``tol`` for
    finite-difference checks.

    Notes
    -----
    ``in_shape = (H, W) = (len(z), len(x))``, ``out_shape = (T, R, F)``, ``dims = ("tx", "rx", "freq")``.
    Being nonlinear, it has no ``adjoint``: :attr:`born` is its linearisation at ``χ = 0`` (used for
    anything that needs an adjoint or a norm, e.g. :meth:`opnorm`).
    """

    is_linear = False

    def __init__(
        self,
        tx: Any,
        rx: Any,
        frequencies: Any,
        x: Any,
        z: Any,
        *,
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
        tol: float | None = None,
        max_iter: int = 500,
    ) -> None:
        tx_a = as_positions(tx, "tx")
        rx_a = as_positions(rx, "rx")
        f = as_frequencies(frequencies)
        xs, zs = as_grid(x, "x"), as_grid(z, "z")
        h = self._pitch(xs, zs)
        self._default_tol = tol is None
        tol = (1e-4 if dtype == torch.complex64 else 1e-9) if tol is None else tol
        if not (isinstance(tol, (int, float)) and 0 < tol < 1):
            raise ValueError(f"tol must be in (0, 1), got {tol!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
        H, W = zs.size, xs.size
        super().__init__((H, W), (len(tx_a), len(rx_a), f.size), ("tx", "rx", "freq"), dtype=dtype, device=device,
                         spatial_dims=("tx", "rx"))  # fmt: skip
        self.tx, self.rx, self.frequencies, self.x, self.z, self.pitch = tx_a, rx_a, f, xs, zs, h
        self.tol, self.max_iter = float(tol), int(max_iter)
        grid = np.stack(np.meshgrid(xs, zs), axis=-1).reshape(-1, 2)  # (P, 2) as (x, z), row-major (z, x)
        for name, pos in (("tx", tx_a), ("rx", rx_a)):
            inside = (
                (pos[:, 0] >= xs[0] - h / 2) & (pos[:, 0] <= xs[-1] + h / 2)
                & (pos[:, 1] >= zs[0] - h / 2) & (pos[:, 1] <= zs[-1] + h / 2)
            )  # fmt: skip
            if inside.any():
                first = int(np.flatnonzero(inside)[0])
                raise ValueError(f"{name}: antenna {first} lies on the image grid; antennas must be outside it")
        k = 2 * np.pi * f / SPEED_OF_LIGHT
        area = h * h
        a = h / math.sqrt(math.pi)
        from scipy.special import j1

        iz = np.arange(2 * H)
        iz = np.where(iz < H, iz, iz - 2 * H).astype(np.float64)
        ix = np.arange(2 * W)
        ix = np.where(ix < W, ix, ix - 2 * W).astype(np.float64)
        dz, dx = np.meshgrid(iz, ix, indexing="ij")
        valid = (np.abs(dz) < H) & (np.abs(dx) < W)
        spectra, inc, data = [], [], []
        d_t = np.linalg.norm(grid[None, :, :] - tx_a[:, None, :], axis=-1)  # (T, P)
        d_r = np.linalg.norm(grid[None, :, :] - rx_a[:, None, :], axis=-1)  # (R, P)
        for kk in k:
            ker = np.where(valid, _cell_kernel(kk, h, dz, dx), 0)
            spectra.append(np.fft.fft2(kk**2 * ker))
            inc.append(green_2d(kk, d_t).reshape(len(tx_a), H, W))
            c_f = -1j * kk * area / (8 * math.pi)
            data.append((kk**2 / c_f) * (2 * math.pi * a / kk) * j1(kk * a) * green_2d(kk, d_r))
        self.k = torch.as_tensor(k, dtype=self.real_dtype, device=self.device)
        self._spectrum = torch.as_tensor(np.stack(spectra), dtype=self.dtype, device=self.device)  # (F, 2H, 2W)
        self.incident = torch.as_tensor(np.stack(inc), dtype=self.dtype, device=self.device)  # (F, T, H, W)
        self._data = torch.as_tensor(np.stack(data), dtype=self.dtype, device=self.device)  # (F, R, P)
        self._cache: dict[Any, torch.Tensor] = {}
        self.last_info: dict[str, KrylovInfo] = {}

    @staticmethod
    def _pitch(xs: np.ndarray, zs: np.ndarray) -> float:
        steps = np.concatenate([np.diff(xs), np.diff(zs)])
        if steps.size == 0:
            raise ValueError("x, z: need at least 2 pixels per side")
        h = float(steps[0])
        if not (h > 0 and np.allclose(steps, h, rtol=1e-6, atol=0)):
            raise ValueError("x, z must be increasing with one common pitch (square pixels) for the volume integral")
        return h

    # ------------------------------------------------------------------ sizes
    @property
    def n_tx(self) -> int:
        """Number of transmitters ``T``."""
        return self.out_shape[0]

    @property
    def n_freq(self) -> int:
        """Number of frequencies ``F``."""
        return self.out_shape[2]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> LippmannSchwinger:
        """A copy on ``device`` and/or with ``dtype`` (caches and the Born view are rebuilt there)."""
        born = self.__dict__.pop("_born", None)  # it points back at self: converting it would recurse
        try:
            return super().to(device, dtype)  # type: ignore[return-value]
        finally:
            self._born = born

    def _after_to(self) -> None:
        if self._default_tol:
            self.tol = 1e-4 if self.dtype == torch.complex64 else 1e-9
        self._cache = {}
        self.last_info = {}
        self._born = None

    # ------------------------------------------------------------------ building blocks
    def _convolve(self, w: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
        """Linear convolution on the grid by FFT on the ``(2H, 2W)`` zero-padded grid."""
        H, W = self.in_shape
        wf = torch.fft.fft2(w, s=(2 * H, 2 * W))
        return torch.fft.ifft2(wf * spectrum[:, None])[..., :H, :W]

    def green_domain(self, w: torch.Tensor) -> torch.Tensor:
        """``G_D w = k² Σ_p' ∫_cell G(p − p') w(p')``: ``(..., F, T, H, W) → (..., F, T, H, W)``."""
        return self._convolve(w, self._spectrum)

    def green_domain_adjoint(self, v: torch.Tensor) -> torch.Tensor:
        """``G_Dᴴ v`` (the kernel is even, so this is the convolution with its conjugate): same shapes."""
        return self._convolve(v, self._spectrum.conj())

    @property
    def radiation_matrix(self) -> torch.Tensor:
        """``G_S`` as a matrix per frequency, complex ``(F, R, H·W)``: :meth:`green_data` is ``w ↦ G_S w``."""
        return self._data

    def green_data(self, w: torch.Tensor) -> torch.Tensor:
        """``G_S w``, the scattered field of the contrast source ``w = χu`` at the receivers, over ``c_f``.

        ``(..., F, T, H, W) → (..., T, R, F)``.
        """
        flat = w.reshape(*w.shape[:-2], -1)  # (..., F, T, P)
        y = flat @ self._data.transpose(-1, -2)[..., :, :]  # (F, P, R) broadcast → (..., F, T, R)
        return y.movedim(-3, -1)

    def green_data_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``G_Sᴴ y``: ``(..., T, R, F) → (..., F, T, H, W)``."""
        yf = y.movedim(-1, -3)  # (..., F, T, R)
        w = yf @ self._data.conj()  # (F, R, P)
        return w.reshape(*w.shape[:-1], *self.in_shape)

    # ------------------------------------------------------------------ solves
    def _solve(self, chi: torch.Tensor, rhs: torch.Tensor, adjoint: bool, key: Any) -> torch.Tensor:
        c = chi[..., None, None, :, :]
        if adjoint:
            cc = c.conj()

            def apply(q: torch.Tensor) -> torch.Tensor:
                return q - self.green_domain_adjoint(cc * q)
        else:

            def apply(u: torch.Tensor) -> torch.Tensor:
                return u - self.green_domain(c * u)

        x0 = self._cache.get(key)
        if x0 is not None and x0.shape != rhs.shape:
            x0 = None
        what = f"LippmannSchwinger {'adjoint' if adjoint else 'field'} solve"
        try:
            sol, info = bicgstab(apply, rhs, x0, tol=self.tol, max_iter=self.max_iter, what=what)
        except ConvergenceError as exc:  # name the contrast only on failure (no host sync per solve)
            msg = str(exc).replace(what, f"{what} (max |χ| = {float(chi.abs().max()):.3g})", 1)
            raise ConvergenceError(msg, exc.residual, exc.iterations) from None
        self._cache[key] = sol.detach()
        self.last_info["adjoint" if adjoint else "field"] = info
        return sol

    def total_field(self, chi: torch.Tensor) -> torch.Tensor:
        """The total field ``u`` inside the grid for every transmitter and frequency.

        ``chi (..., H, W)`` complex → ``(..., F, T, H, W)``. Raises :class:`ConvergenceError`.
        """
        chi = self._check(chi, self.in_shape, "total_field").detach()
        rhs = self.incident.expand(*chi.shape[:-2], *self.incident.shape)
        return self._solve(chi, rhs, adjoint=False, key=("field", tuple(chi.shape[:-2])))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Scatter.apply(x, self)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise TypeError(
            "LippmannSchwinger is nonlinear and has no adjoint; use .born (its linearisation at χ = 0) "
            "or .born_at(field)"
        )

    # ------------------------------------------------------------------ linearisations
    @property
    def born(self) -> FieldBorn:
        """The first Born approximation (the linearisation at ``χ = 0``), a :class:`FieldBorn`."""
        if getattr(self, "_born", None) is None:
            self._born = FieldBorn(self, self.incident)
        return self._born

    def born_at(self, field: torch.Tensor) -> FieldBorn:
        """``χ ↦ G_S(χ · field)`` for a fixed total field ``(F, T, H, W)`` (Born iterative method)."""
        return FieldBorn(self, field)

    def opnorm(self, iters: int = 100, tol: float = 1e-6, seed: int = 0) -> float:
        """The norm of :attr:`born` (the operator's scale at small contrast)."""
        return self.born.opnorm(iters, tol, seed)

    def normal_diagonal(self) -> torch.Tensor:
        """The diagonal of ``BᴴB`` for the Born linearisation ``B``."""
        return self.born.normal_diagonal()

    def select_frequencies(self, index: Sequence[int]) -> LippmannSchwinger:
        """The same operator on the frequencies ``index`` (ints into ``frequencies``, increasing)."""
        idx = [int(i) for i in index]
        if not idx or any(i < 0 or i >= self.n_freq for i in idx) or sorted(set(idx)) != idx:
            raise ValueError(f"select_frequencies: need increasing indices in 0…{self.n_freq - 1}, got {list(index)}")
        new = object.__new__(type(self))
        new.__dict__ = dict(self.__dict__)
        new.frequencies = self.frequencies[idx]
        t = torch.as_tensor(idx, device=self.device)
        new.k, new._spectrum, new.incident, new._data = self.k[t], self._spectrum[t], self.incident[t], self._data[t]
        new.out_shape = (self.n_tx, self.out_shape[1], len(idx))
        new._cache, new.last_info, new._born, new._opnorm_cache = {}, {}, None, None
        return new


class _Scatter(torch.autograd.Function):
    """``χ ↦ G_S(χ u(χ))`` with the adjoint-state backward pass."""

    @staticmethod
    def forward(ctx: Any, chi: torch.Tensor, op: LippmannSchwinger) -> torch.Tensor:  # type: ignore[override]
        u = op.total_field(chi)
        ctx.op = op
        ctx.save_for_backward(chi, u)
        return op.green_data(chi[..., None, None, :, :] * u)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        chi, u = ctx.saved_tensors
        op: LippmannSchwinger = ctx.op
        v = op.green_data_adjoint(grad)
        q = op._solve(chi, v, adjoint=True, key=("adjoint", tuple(chi.shape[:-2])))
        return (u.conj() * q).sum(dim=(-4, -3)), None
