r"""2-D diffraction tomography (first Born / Rytov): :class:`DiffractionTomography`.

Geometry and conventions (docs/design.md §3): time convention ``e^{−iωt}``; object function
``f(r) = k_m² ((n(r)/n_m)² − 1)`` in m⁻² with ``k_m = 2π n_m / λ0``; illumination
``u0 = exp(i k_m s0·r)`` with ``s0 = (−sin φ, cos φ)``; a line detector at distance
``l_D`` from the rotation centre along ``s0``, coordinate ``ξ`` along
``t⊥ = (cos φ, sin φ)``. Vectors are ``(x, y)`` with ``x`` along the image columns
(axis ``W``) and ``y`` along the rows (axis ``H``): at ``φ = 0`` the wave travels down
the rows (axis 0), as in ``odtbrain``. The rotation centre is pixel ``(H//2, W//2)``;
pixel ``(i, j)`` sits at ``x = (j − W//2) Δ``, ``y = (i − H//2) Δ``. Detector sample
``n`` sits at ``ξ = (n − N//2) Δ`` (detector pitch = ``pixel_size``).

Fourier diffraction theorem (Born):

.. math::

    \frac{\hat U(k_x)}{u_0(l_D)} = \frac{i}{2\gamma} e^{i(\gamma-k_m) l_D}
        \tilde F(k_x t_\perp + (\gamma - k_m) s_0), \quad \gamma = \sqrt{k_m^2 - k_x^2},\ |k_x| < k_m

with the continuous transforms ``F̃(K) = ∫ f e^{−iK·r} d²r ≈ Δ² Σ_p f_p e^{−iK·r_p}`` and
``Û(k_x) = ∫ u e^{−i k_x ξ} dξ``. The operator evaluates ``F̃`` on the semicircles by a
non-uniform DFT (:mod:`.nufft`), applies the weight and takes the 1-D inverse FFT over
the ``N`` detector frequencies ``k_x = 2π (m − N//2) / (N Δ)``; evanescent frequencies
(``|k_x| ≥ k_m``) are zero. Its adjoint is the exact type-1 counterpart.

Data transforms: :func:`born_data`, :func:`rytov_data` (with :func:`unwrap_phase`),
:func:`refocus`, :func:`object_to_index`, :func:`index_to_object`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

from .base import LinearOperator
from .nufft import NonUniformFourier2D, dense_cost, dense_tables_cached, kbnufft_available, nufft_available

__all__ = [
    "DiffractionTomography",
    "auto_method",
    "born_data",
    "rytov_data",
    "unwrap_phase",
    "refocus",
    "object_to_index",
    "index_to_object",
]

#: A tensor or an array: the data transforms (:func:`born_data`, …) return the kind they are given.
ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)
AUTO_DENSE_MAX_COST = 1 << 20  # "auto": dense NUDFT when M·H·W ≤ 2²⁰ (the crossover; docs/notes.md)


def auto_method(
    n_samples: int, shape: tuple[int, int], device: torch.device | str, dtype: torch.dtype = torch.complex64
) -> str:
    """The NUDFT path ``method="auto"`` takes for ``n_samples`` frequencies on an ``(H, W)`` grid.

    CPU: the exact dense NUDFT while ``M·H·W ≤ AUTO_DENSE_MAX_COST`` or finufft is missing, else
    finufft. Other devices (finufft is CPU-only and would copy through the host every call): the
    dense NUDFT while its phase tables stay cached on the device (≤ 4 GiB: up to 512² in the
    default geometry) or torchkbnufft is missing, else torchkbnufft. Chosen by measurement
    (see docs/notes.md, "Measurements formerly quoted in code").
    """
    if torch.device(device).type == "cpu":
        small = dense_cost(n_samples, shape) <= AUTO_DENSE_MAX_COST
        return "dense" if small or not nufft_available() else "nufft"
    cached = dense_tables_cached(n_samples, shape, device, dtype)
    return "dense" if cached or not kbnufft_available() else "kbnufft"


# ---------------------------------------------------------------------- validation
def _real(value: object, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        if isinstance(value, (torch.Tensor, np.ndarray)) and np.ndim(value) == 0 and not np.iscomplexobj(value):
            value = float(value)
        else:
            raise TypeError(f"{where}: {name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{where}: {name} must be finite, got {v}")
    return v


def _positive(value: object, name: str, where: str, unit: str) -> float:
    v = _real(value, name, where)
    if v <= 0:
        raise ValueError(f"{where}: {name} must be > 0 ({unit}), got {v}")
    return v


def _angles(angles: object, where: str) -> np.ndarray:
    if isinstance(angles, torch.Tensor):
        angles = angles.detach().cpu().numpy()
    try:
        a = np.asarray(angles, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where}: angles must be a 1-D array of real numbers (radians)") from err
    if a.ndim != 1:
        raise ValueError(f"{where}: angles must be a 1-D array (radians), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{where}: angles must not be empty")
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: angles contain NaN or Inf")
    wrapped = np.sort(np.mod(a, 2 * np.pi))
    gaps = np.diff(np.concatenate([wrapped, wrapped[:1] + 2 * np.pi]))
    if a.size > 1 and gaps.min() < 1e-9:
        raise ValueError(f"{where}: angles contain duplicates (equal modulo 2π)")
    return a


def _shape(shape: object, where: str) -> tuple[int, int]:
    if not isinstance(shape, Sequence) or len(shape) != 2:
        raise ValueError(f"{where}: shape must be (H, W), got {shape!r}")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"{where}: shape must hold integers, got {shape!r}")
    if min(shape) < 2:
        raise ValueError(f"{where}: shape must be at least (2, 2), got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


class DiffractionTomography(LinearOperator):
    """2-D Born diffraction-tomography forward model ``f ↦ u_B / u0`` on a line detector.

    Parameters
    ----------
    angles : 1-D array (A,), radians
        Illumination angles ``φ`` (distinct modulo 2π; full 2π coverage is classical).
    shape : ``(H, W)``
        Object grid.
    wavelength : float, metres
        Vacuum wavelength ``λ0``.
    medium_index : float
        Refractive index ``n_m`` of the surrounding medium (> 0).
    pixel_size : float, metres
        Grid spacing ``Δ`` of the object and of the detector.
    detector_distance : float, metres
        ``l_D``, distance from the rotation centre to the detector line (≥ 0).
    detector_size : int, optional
        Number of detector samples ``N`` (default ``W``).
    method : ``"auto"``, ``"nufft"`` (finufft, CPU), ``"kbnufft"`` (torchkbnufft, any device), ``"dense"`` (exact)
        ``"auto"`` picks the fastest path for the device the operator lives on, again after
        every :meth:`to`: on the CPU, dense when ``M·H·W ≤ 2²⁰`` (``M`` = number of propagating
        samples) or finufft is missing, else finufft; on a GPU, see ``operators.tomography.auto_method``.
    dtype, device : complex dtype and torch device

    Notes
    -----
    Shapes: forward: object function ``(..., H, W)`` in m⁻² → normalised scattered field
    ``u_B/u0`` ``(..., A, N)`` (dimensionless); ``dims == ("angle", "detector")``,
    ``spatial_dims == ("detector",)``. Adjoint: ``(..., A, N) → (..., H, W)``.

    Scale: in SI units ``‖A‖`` is tiny (≈ 4e-13 for 32² pixels at λ0 = 1 µm), so in complex64
    ``‖AᴴA x‖²`` underflows and a float32 solver sees zeros; :meth:`opnorm` handles
    this itself, and for iterative solvers use complex128 or ``op / op.opnorm()``
    (then the unknown is ``‖A‖ f``).
    """

    def __init__(
        self,
        angles: Sequence[float] | np.ndarray | torch.Tensor,
        shape: tuple[int, int],
        wavelength: float,
        medium_index: float,
        pixel_size: float,
        detector_distance: float = 0.0,
        detector_size: int | None = None,
        *,
        method: str = "auto",
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
    ) -> None:
        where = "DiffractionTomography"
        ang = _angles(angles, where)
        H, W = _shape(shape, where)
        lam = _positive(wavelength, "wavelength", where, "metres")
        n_m = _positive(medium_index, "medium_index", where, "refractive index")
        dx = _positive(pixel_size, "pixel_size", where, "metres")
        l_d = _real(detector_distance, "detector_distance", where)
        if l_d < 0:
            raise ValueError(f"{where}: detector_distance must be ≥ 0 (metres), got {l_d}")
        if detector_size is None:
            n_det = W
        elif isinstance(detector_size, (int, np.integer)) and not isinstance(detector_size, bool):
            n_det = int(detector_size)
            if n_det < 2:
                raise ValueError(f"{where}: detector_size must be ≥ 2, got {n_det}")
        else:
            raise TypeError(f"{where}: detector_size must be an int or None, got {type(detector_size).__name__}")
        if method not in ("auto", "nufft", "kbnufft", "dense"):
            raise ValueError(f"{where}: method must be 'auto', 'nufft', 'kbnufft' or 'dense', got {method!r}")
        super().__init__((H, W), (ang.size, n_det), ("angle", "detector"), dtype=dtype, device=device,
                         spatial_dims=("detector",))
        self.angles = ang
        self.wavelength, self.medium_index, self.pixel_size, self.detector_distance = lam, n_m, dx, l_d
        self.detector_size = n_det
        self.k_m = 2 * math.pi * n_m / lam
        if math.sqrt(2) * self.k_m * dx > math.pi:
            warnings.warn(
                f"{where}: pixel_size {dx:g} m is coarser than λ_m/(2√2) = {lam / n_m / (2 * math.sqrt(2)):g} m; "
                "the object spectrum |K| ≤ √2 k_m aliases on this grid",
                stacklevel=2,
            )
        kx = 2 * math.pi * (np.arange(n_det) - n_det // 2) / (n_det * dx)
        prop = np.abs(kx) < self.k_m
        self._lo = int(np.argmax(prop))
        self._hi = self._lo + int(prop.sum())
        self.detector_frequencies = kx
        gamma = np.sqrt(self.k_m**2 - kx[prop] ** 2)
        t = np.stack([np.cos(ang), np.sin(ang)], axis=-1)  # (A, 2) as (x, y)
        s = np.stack([-np.sin(ang), np.cos(ang)], axis=-1)
        self._k = kx[prop][None, :, None] * t[:, None, :] + (gamma - self.k_m)[None, :, None] * s[:, None, :]
        self._coef_np = dx * (1j / (2 * gamma)) * np.exp(1j * (gamma - self.k_m) * l_d)
        omega = (self._k[..., ::-1] * dx).reshape(-1, 2)  # (ω_y, ω_x) in rad/pixel
        self._auto = method == "auto"
        if self._auto:
            method = auto_method(omega.shape[0], (H, W), self.device, dtype)
        self.method = method
        self._nudft = NonUniformFourier2D(omega, (H, W), method=method, dtype=dtype, device=self.device)
        self._after_to()

    def _after_to(self) -> None:
        self._coef = torch.from_numpy(self._coef_np).to(device=self.device, dtype=self.dtype)
        if self._auto:  # "auto" means the fastest path on the device the operator now lives on
            method = auto_method(self._nudft.size_out, self.in_shape, self.device, self.dtype)
            if method != self.method:
                self.method = method
                nu = self._nudft
                self._nudft = NonUniformFourier2D(nu.omega, nu.in_shape, method=method, dtype=self.dtype,
                                                  device=self.device)  # fmt: skip

    # ------------------------------------------------------------------ geometry
    @property
    def propagating(self) -> np.ndarray:
        """Boolean mask ``(N,)`` of the detector frequencies with ``|k_x| < k_m``."""
        m = np.zeros(self.detector_size, dtype=bool)
        m[self._lo : self._hi] = True
        return m

    @property
    def k_samples(self) -> np.ndarray:
        """Object-spectrum samples ``K = k_x t⊥ + (γ − k_m) s0``, shape ``(A, P, 2)`` as ``(K_x, K_y)`` in rad/m."""
        return self._k.copy()

    @property
    def detector_coordinates(self) -> np.ndarray:
        """Detector positions ``ξ_n = (n − N//2) Δ`` in metres, shape ``(N,)``."""
        return (np.arange(self.detector_size) - self.detector_size // 2) * self.pixel_size

    @property
    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(y (H,), x (W,))`` in metres."""
        H, W = self.in_shape
        return (np.arange(H) - H // 2) * self.pixel_size, (np.arange(W) - W // 2) * self.pixel_size

    # ------------------------------------------------------------------ operator
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[:-2]
        A, N = self.out_shape
        c = self._nudft._forward(x).reshape(*batch, A, -1) * self._coef
        spec = torch.cat([c.new_zeros(*batch, A, self._lo), c, c.new_zeros(*batch, A, N - self._hi)], dim=-1)
        return torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(spec, dim=-1), dim=-1), dim=-1)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        batch = y.shape[:-2]
        spec = torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(y, dim=-1), dim=-1), dim=-1)
        c = spec[..., self._lo : self._hi] * (self._coef.conj() / self.detector_size)
        return self._nudft._adjoint(c.reshape(*batch, -1))

    def normal_diagonal(self) -> torch.Tensor:
        """Exact ``diag(AᴴA) = (A/N) Σ_m |w_m|²``, the same at every pixel."""
        value = self.out_shape[0] / self.detector_size * float(np.sum(np.abs(self._coef_np) ** 2))
        return torch.full(self.in_shape, value, dtype=self.real_dtype, device=self.device)

    def opnorm(self, iters: int = 100, tol: float = 1e-6, seed: int = 0) -> float:
        """``‖A‖₂`` by power iteration on ``A / √diag(AᴴA)`` (cached).

        In SI units ``‖A‖`` is tiny (≈ Δ²·√M / k_m, e.g. 1e-13 m² at optical wavelengths), so
        the squared norms of ``AᴴA x`` underflow in float32; iterating on the rescaled operator
        avoids that.
        """
        if self._opnorm_cache is None:
            scale = math.sqrt(float(self.normal_diagonal()[0, 0]))
            self._opnorm_cache = scale * (self * (1.0 / scale)).opnorm(iters, tol, seed)
        return self._opnorm_cache

    def __repr__(self) -> str:
        return (
            f"DiffractionTomography(angles={self.out_shape[0]}, shape={self.in_shape}, "
            f"wavelength={self.wavelength:g}, medium_index={self.medium_index:g}, pixel_size={self.pixel_size:g}, "
            f"detector_distance={self.detector_distance:g}, detector_size={self.detector_size}, "
            f"method={self.method!r}, dtype={self.dtype}, device={self.device})"
        )


# ---------------------------------------------------------------------- data transforms
def _check_nonzero(x: torch.Tensor | np.ndarray, name: str, where: str) -> None:
    zero = (x == 0).any() if isinstance(x, torch.Tensor) else np.any(np.asarray(x) == 0)
    if bool(zero):
        raise ValueError(f"{where}: {name} contains zeros")


def born_data(u: ArrayT, u0: ArrayT | complex) -> ArrayT:
    """Born data ``u/u0 − 1`` (torch or numpy; ``u0`` broadcasts against ``u``)."""
    _check_nonzero(u0 if isinstance(u0, (torch.Tensor, np.ndarray)) else np.asarray(u0), "u0", "born_data")
    return u / u0 - 1


def unwrap_phase(phase: ArrayT, dim: int = -1) -> ArrayT:
    """Unwrap a phase along ``dim`` with ``numpy.unwrap`` semantics (discont π, period 2π)."""
    if isinstance(phase, np.ndarray):
        return np.unwrap(phase, axis=dim)
    if not isinstance(phase, torch.Tensor) or phase.is_complex():
        raise TypeError("unwrap_phase: phase must be a real torch.Tensor or numpy array")
    dd = torch.diff(phase, dim=dim)
    ddmod = torch.remainder(dd + math.pi, 2 * math.pi) - math.pi
    ddmod = torch.where((ddmod == -math.pi) & (dd > 0), torch.full_like(ddmod, math.pi), ddmod)
    correct = torch.where(dd.abs() < math.pi, torch.zeros_like(dd), ddmod - dd)
    first = phase.narrow(dim, 0, 1)
    return torch.cat([first, phase.narrow(dim, 1, phase.shape[dim] - 1) + torch.cumsum(correct, dim=dim)], dim=dim)


def rytov_data(u: ArrayT, u0: ArrayT | complex) -> ArrayT:
    """Rytov data ``ln(u/u0) = ln|u/u0| + i·unwrap(arg(u/u0))``, unwrapped along the detector (last axis).

    Torch or numpy; ``u0`` broadcasts against ``u``. Raises ``ValueError`` where ``u/u0`` is zero.
    """
    _check_nonzero(u0 if isinstance(u0, (torch.Tensor, np.ndarray)) else np.asarray(u0), "u0", "rytov_data")
    r = u / u0
    _check_nonzero(r, "u/u0", "rytov_data")
    if isinstance(r, torch.Tensor):
        r = r if r.is_complex() else r.to(torch.complex128 if r.dtype == torch.float64 else torch.complex64)
        return torch.complex(torch.log(r.abs()), unwrap_phase(torch.angle(r), dim=-1))
    r = np.asarray(r, dtype=complex)
    return np.log(np.abs(r)) + 1j * np.unwrap(np.angle(r), axis=-1)


def refocus(
    field: ArrayT, distance: float, wavelength: float, medium_index: float, pixel_size: float, pad_factor: float = 2.0
) -> ArrayT:
    """Propagate a normalised field ``u/u0`` (last axis = detector) by ``distance`` metres along ``s0``.

    Angular-spectrum propagation in the homogeneous medium: the spectrum of
    ``u/u0 − 1`` (zero-padded to ``pad_factor·N``) is multiplied by
    ``e^{i(γ − k_m) d}``; evanescent components are dropped. A negative ``distance``
    refocuses a field measured at ``l_D`` back towards the object, e.g. to ``l_D = 0``
    before taking :func:`rytov_data` (the Rytov transform does not commute with
    propagation). Torch or numpy in, same type out.
    """
    d = _real(distance, "distance", "refocus")
    k_m = 2 * math.pi * _positive(medium_index, "medium_index", "refocus", "") / _positive(
        wavelength, "wavelength", "refocus", "metres"
    )
    dx = _positive(pixel_size, "pixel_size", "refocus", "metres")
    is_np = isinstance(field, np.ndarray)
    t = torch.from_numpy(np.asarray(field, dtype=complex)) if is_np else field
    n = t.shape[-1]
    n_pad = max(n, math.ceil(_positive(pad_factor, "pad_factor", "refocus", "") * n))
    left = n_pad // 2 - n // 2
    s = torch.nn.functional.pad(t - 1, (left, n_pad - n - left))
    kx = 2 * math.pi * (np.arange(n_pad) - n_pad // 2) / (n_pad * dx)
    prop = np.abs(kx) < k_m
    h = np.where(prop, np.exp(1j * (np.sqrt(np.where(prop, k_m**2 - kx**2, 0.0)) - k_m) * d), 0.0)
    h_t = torch.from_numpy(h).to(device=s.device, dtype=s.dtype)
    spec = torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(s, dim=-1), dim=-1), dim=-1) * h_t
    out = torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(spec, dim=-1), dim=-1), dim=-1)
    out = out[..., left : left + n] + 1
    return out.numpy() if is_np else out


def object_to_index(f: ArrayT, wavelength: float, medium_index: float) -> ArrayT:
    """Refractive index ``n = n_m √(f/k_m² + 1)`` (complex, root with ``Re n ≥ 0``) from ``f`` in m⁻²."""
    lam = _positive(wavelength, "wavelength", "object_to_index", "metres")
    n_m = _positive(medium_index, "medium_index", "object_to_index", "")
    k_m = 2 * math.pi * n_m / lam
    if isinstance(f, torch.Tensor):
        fc = f if f.is_complex() else f.to(torch.complex128 if f.dtype == torch.float64 else torch.complex64)
        return n_m * torch.sqrt(fc / k_m**2 + 1)
    return n_m * np.sqrt(np.asarray(f, dtype=complex) / k_m**2 + 1)


def index_to_object(n: ArrayT, wavelength: float, medium_index: float) -> ArrayT:
    """Object function ``f = k_m² ((n/n_m)² − 1)`` in m⁻² from a (complex) refractive index ``n``."""
    lam = _positive(wavelength, "wavelength", "index_to_object", "metres")
    n_m = _positive(medium_index, "medium_index", "index_to_object", "")
    k_m = 2 * math.pi * n_m / lam
    return k_m**2 * ((n / n_m) ** 2 - 1)
