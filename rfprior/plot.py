"""Figures: magnitude images in dB, side-by-side comparisons, curves, FBC bands, k-space coverage.

Every function draws into a new figure (or a given axis) and, when ``path`` is
given, saves it (format from the suffix: ``.png`` or ``.pdf``; a path without a
suffix writes both). Works without a display (Agg backend).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless-safe; the first import wins, and no rfprior figure needs a GUI

import matplotlib.pyplot as plt
import numpy as np
import torch
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["animate", "compare", "curves", "fbc_curves", "frame_strip", "image_db", "kspace_coverage", "save"]


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def save(fig: Figure, path: str | Path) -> list[Path]:
    """Save ``fig`` to ``path`` (``.png``/``.pdf``; anything else → both, appended) and close it.

    ``"out/lr_0.01"`` writes ``out/lr_0.01.png`` and ``out/lr_0.01.pdf``. Returns the files written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    both = [path.with_name(path.name + ".png"), path.with_name(path.name + ".pdf")]
    targets = [path] if path.suffix.lower() in (".png", ".pdf") else both
    for t in targets:
        fig.savefig(t, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return targets


def _extent(x: np.ndarray | None, z: np.ndarray | None, shape: tuple[int, int]) -> tuple[list[float] | None, str, str]:
    if x is None and z is None:
        return None, "pixel", "pixel"
    if x is None or z is None:
        raise ValueError("image_db: give both coordinate vectors x (W,) and z (H,), or neither")
    x, z = np.asarray(_np(x), dtype=float), np.asarray(_np(z), dtype=float)
    if x.ndim != 1 or x.shape[0] != shape[1]:
        raise ValueError(f"image_db: x must be a vector of the image width {shape[1]}, got shape {x.shape}")
    if z.ndim != 1 or z.shape[0] != shape[0]:
        raise ValueError(f"image_db: z must be a vector of the image height {shape[0]}, got shape {z.shape}")
    if not (np.isfinite(x).all() and np.isfinite(z).all()):
        raise ValueError("image_db: x and z must be finite")
    dx = (x[-1] - x[0]) / max(len(x) - 1, 1)
    dz = (z[-1] - z[0]) / max(len(z) - 1, 1)
    return [x[0] - dx / 2, x[-1] + dx / 2, z[0] - dz / 2, z[-1] + dz / 2], "cross-range x [m]", "range z [m]"


def image_db(
    img: torch.Tensor | np.ndarray,
    x: np.ndarray | None = None,
    z: np.ndarray | None = None,
    *,
    dynamic_range: float = 40.0,
    title: str = "",
    ax: Axes | None = None,
    reference: float | None = None,
    labels: tuple[str, str] | None = None,
    path: str | Path | None = None,
    scale: str = "db",
    signed: bool | None = None,
) -> Axes:
    """Magnitude image ``(H, W)`` in dB (``20 log10 |img| / reference``, default the peak) with metre axes.

    ``x`` (W,) and ``z`` (H,) are the column and row coordinates in metres; rows are
    drawn bottom-up so that range increases upwards. ``scale="linear"`` draws the
    values themselves (a real image, e.g. an index contrast Δn) or the magnitude of a
    complex one, on ``[−reference, reference]`` (``signed``; default: a real image
    with negative values) or ``[0, reference]``.
    """
    if scale not in ("db", "linear"):
        raise ValueError(f"image_db: scale must be 'db' or 'linear', got {scale!r}")
    v = _np(img)
    if v.ndim != 2:
        raise ValueError(f"image_db: expected a 2-D image, got shape {v.shape}")
    a = np.abs(v).astype(float)
    ref = float(reference) if reference is not None else float(a.max()) or 1.0
    if scale == "linear":
        if signed is None:
            signed = not np.iscomplexobj(v) and bool((v < 0).any())
        shown = a if np.iscomplexobj(v) else v.astype(float)
        style = {"cmap": "RdBu_r" if signed else "viridis", "vmin": -ref if signed else 0.0, "vmax": ref}
        bar_label = ""
    else:
        shown = 20 * np.log10(np.maximum(a / ref, 10 ** (-dynamic_range / 20 - 1)))
        style = {"cmap": "inferno", "vmin": -dynamic_range, "vmax": 0}
        bar_label = "dB"
    extent, xl, zl = _extent(x, z, a.shape)
    if labels is not None:
        xl, zl = labels
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(shown, origin="lower", extent=extent, aspect="auto", **style)
    ax.set_xlabel(xl)
    ax.set_ylabel(zl)
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, label=bar_label)
    if own and path is not None:
        save(ax.figure, path)
    return ax


def compare(
    images: Mapping[str, torch.Tensor | np.ndarray],
    x: np.ndarray | None = None,
    z: np.ndarray | None = None,
    *,
    dynamic_range: float = 40.0,
    common_reference: bool = False,
    suptitle: str = "",
    labels: tuple[str, str] | None = None,
    path: str | Path | None = None,
    scale: str = "db",
) -> Figure:
    """Side-by-side magnitude images in dB, one panel per entry of ``images`` (title = key).

    ``scale="linear"``: linear colour scale instead (see :func:`image_db`).
    """
    if not isinstance(images, Mapping):
        raise TypeError(f"compare: images must be a mapping title → image, got {type(images).__name__}")
    n = len(images)
    if n == 0:
        raise ValueError("compare: no images given")
    fig, axes = plt.subplots(1, n, figsize=(3.9 * n, 3.5), squeeze=False)
    ref = max(float(np.abs(_np(v)).max()) for v in images.values()) if common_reference else None
    signed = any(not np.iscomplexobj(_np(v)) and bool((_np(v) < 0).any()) for v in images.values())
    for ax, (name, img) in zip(axes[0], images.items(), strict=True):
        image_db(
            img,
            x,
            z,
            dynamic_range=dynamic_range,
            title=name,
            ax=ax,
            reference=ref,
            labels=labels,
            scale=scale,
            signed=signed,
        )
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    if path is not None:
        save(fig, path)
    return fig


def curves(
    history: xr.Dataset,
    *,
    chosen: int | None = None,
    oracle: int | None = None,
    variables: Sequence[str] | None = None,
    title: str = "",
    path: str | Path | None = None,
) -> Figure:
    """Per-iteration curves from a result history, the chosen (and oracle) iterate marked.

    Default panels: data misfit (log), each recorded rule statistic present, and PSNR if present.
    """
    if not isinstance(history, xr.Dataset) or "iteration" not in history.dims:
        raise ValueError("curves: history must be an xarray.Dataset with an 'iteration' dimension (Result.history)")
    if variables is not None:
        unknown = [v for v in variables if v not in history.data_vars]
        if unknown:
            raise ValueError(f"curves: variables {unknown} are not in the history; it has {sorted(history.data_vars)}")
    skip = {"time", "lr", "loss"}
    names = (
        list(variables)
        if variables is not None
        else [v for v in history.data_vars if v not in skip and np.isfinite(history[v].values).any()]
    )
    if not names:
        names = ["loss"]
    fig, axes = plt.subplots(len(names), 1, figsize=(6.0, 1.9 * len(names) + 0.4), sharex=True, squeeze=False)
    it = history["iteration"].values
    for ax, name in zip(axes[:, 0], names, strict=True):
        v = history[name].values.astype(float)
        ok = np.isfinite(v)
        ax.plot(it[ok], v[ok], lw=1.2)
        if name in ("misfit", "loss", "heldout", "wmv", "discrepancy") and (v[ok] > 0).all() and ok.any():
            ax.set_yscale("log")
        ax.set_ylabel(name)
        for mark, colour, label in ((chosen, "tab:red", "chosen"), (oracle, "tab:green", "oracle")):
            if mark is not None:
                ax.axvline(mark, color=colour, ls="--", lw=1, label=label)
        ax.grid(alpha=0.3)
    if chosen is not None or oracle is not None:
        axes[0, 0].legend(loc="best", fontsize="small")
    axes[-1, 0].set_xlabel("iteration")
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    if path is not None:
        save(fig, path)
    return fig


def fbc_curves(
    iterations: Sequence[int] | np.ndarray,
    bands: np.ndarray | torch.Tensor,
    *,
    labels: Sequence[str] | None = None,
    title: str = "frequency-band correspondence",
    ax: Axes | None = None,
    path: str | Path | None = None,
) -> Axes:
    """FBC per band over iterations: ``bands`` has shape ``(T, n_bands)`` (low → high frequency)."""
    b = _np(bands)
    if b.ndim != 2 or b.shape[0] != len(iterations):
        raise ValueError(f"fbc_curves: bands must have shape (len(iterations), n_bands), got {b.shape}")
    if labels is not None and len(labels) != b.shape[1]:
        raise ValueError(f"fbc_curves: labels must name the {b.shape[1]} bands, got {len(labels)}")
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=(5.5, 3.4))
    colours = plt.cm.viridis(np.linspace(0, 0.9, b.shape[1]))
    for k in range(b.shape[1]):
        lab = labels[k] if labels is not None else f"band {k + 1}"
        ax.plot(iterations, b[:, k], color=colours[k], label=lab)
    ax.set_xlabel("iteration")
    ax.set_ylabel("FBC")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    if own and path is not None:
        save(ax.figure, path)
    return ax


def kspace_coverage(
    samples: torch.Tensor | np.ndarray,
    *,
    radius: float | None = None,
    title: str = "k-space coverage",
    units: str = "rad/m",
    path: str | Path | None = None,
) -> Figure:
    """Coverage plot: a boolean mask ``(H, W)`` is drawn as an image; points ``(N, 2)`` as a scatter.

    ``radius`` draws a reference circle (e.g. ``√2 k_m`` for diffraction tomography).
    """
    s = _np(samples)
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    if s.dtype == bool and s.ndim == 2:
        h, w = s.shape
        ext = [-(w // 2) - 0.5, w - w // 2 - 0.5, -(h // 2) - 0.5, h - h // 2 - 0.5]
        ax.imshow(s, cmap="gray_r", origin="lower", extent=ext)
        ax.set_xlabel("k_x [grid index]")
        ax.set_ylabel("k_y [grid index]")
        ax.set_title(f"{title} ({100 * s.mean():.1f} % sampled)")
    elif s.ndim == 2 and s.shape[1] == 2:
        ax.scatter(s[:, 0], s[:, 1], s=1, alpha=0.5)
        ax.set_aspect("equal")
        ax.set_xlabel(f"K_x [{units}]")
        ax.set_ylabel(f"K_y [{units}]")
        ax.set_title(title)
    else:
        raise ValueError(f"kspace_coverage: expected a boolean mask (H, W) or points (N, 2), got {s.shape} {s.dtype}")
    if radius is not None:
        t = np.linspace(0, 2 * math.pi, 256)
        ax.plot(radius * np.cos(t), radius * np.sin(t), "r--", lw=1)
    fig.tight_layout()
    if path is not None:
        save(fig, path)
    return fig


def frame_strip(
    frames: Mapping[str, torch.Tensor | np.ndarray] | torch.Tensor | np.ndarray,
    x: np.ndarray | None = None,
    z: np.ndarray | None = None,
    *,
    every: int = 1,
    dynamic_range: float = 40.0,
    scale: str = "db",
    times: Sequence[float] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """A strip of frames of a sequence: one row per method (``{label: (F, H, W)}``), one column per frame.

    Every row is drawn to one common reference (the peak over its frames), so a frame that fades
    looks faded. ``every`` keeps every n-th frame; ``times`` (s) label the columns. Returns the figure
    (written to ``path`` as :func:`save` does when given).
    """
    rows = frames if isinstance(frames, Mapping) else {"": frames}
    stacks = {k: _np(v) for k, v in rows.items()}
    n_frames = {v.shape[0] for v in stacks.values()}
    if any(v.ndim != 3 for v in stacks.values()) or len(n_frames) != 1:
        shapes = [v.shape for v in stacks.values()]
        raise ValueError(f"frame_strip: every entry must be (F, H, W) with one F, got {shapes}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"frame_strip: every must be an int ≥ 1, got {every!r}")
    shown = list(range(0, n_frames.pop(), every))
    fig, axes = plt.subplots(
        len(stacks), len(shown), figsize=(2.2 * len(shown) + 0.6, 2.1 * len(stacks)), squeeze=False
    )
    for r, (label, v) in enumerate(stacks.items()):
        ref = float(np.abs(v).max()) or 1.0
        for c, t in enumerate(shown):
            ax = axes[r, c]
            head = (f"t = {times[t]:.3g} s" if times is not None else f"frame {t}") if r == 0 else ""
            image_db(v[t], x, z, dynamic_range=dynamic_range, scale=scale, reference=ref, ax=ax, title=head)
            ax.set_xlabel("")
            ax.set_ylabel(label if c == 0 else "")
    fig.tight_layout()
    if path is not None:
        save(fig, path)
    return fig


def animate(
    frames: torch.Tensor | np.ndarray,
    path: str | Path,
    x: np.ndarray | None = None,
    z: np.ndarray | None = None,
    *,
    fps: float = 5.0,
    dynamic_range: float = 40.0,
    scale: str = "db",
    title: str = "",
) -> Path:
    """Write a sequence ``(F, H, W)`` as an animation (``.gif`` with Pillow; ``.mp4`` needs ffmpeg).

    All frames share one colour scale (the peak over the sequence). Returns ``path``.
    """
    from matplotlib import animation

    v = _np(frames)
    if v.ndim != 3 or v.shape[0] < 1:
        raise ValueError(f"animate: expected frames (F, H, W), got shape {v.shape}")
    path = Path(path)
    if path.suffix.lower() not in (".gif", ".mp4"):
        raise ValueError(f"animate: path must end in .gif or .mp4, got {path.name!r}")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"animate: fps must be a positive number, got {fps!r}")
    ref = float(np.abs(v).max()) or 1.0
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    image_db(v[0], x, z, dynamic_range=dynamic_range, scale=scale, reference=ref, ax=ax, title=f"{title} frame 0")
    im = ax.images[0]
    a = np.abs(v).astype(float)
    data = a if scale == "linear" else 20 * np.log10(np.maximum(a / ref, 10 ** (-dynamic_range / 20 - 1)))

    def update(t: int):
        im.set_data(data[t])
        ax.set_title(f"{title} frame {t}".strip())
        return (im,)

    anim = animation.FuncAnimation(fig, update, frames=v.shape[0], blit=False)
    writer = animation.PillowWriter(fps=fps) if path.suffix.lower() == ".gif" else animation.FFMpegWriter(fps=fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    anim.save(path, writer=writer)
    plt.close(fig)
    return path
