"""Default acquisition geometries per modality (SI units), as dicts for :func:`rfprior.io.save_measurements`."""

from __future__ import annotations

from typing import Any

from .. import modalities

__all__ = ["default_geometry", "geometry_parameters"]


def geometry_parameters(modality: str) -> dict[str, Any]:
    """The knobs :func:`default_geometry` accepts for ``modality`` (besides its geometry fields), with defaults."""
    return dict(modalities.get(modality).geometry_parameters)


def default_geometry(modality: str, size: int = 64, *, seed: int = 0, **params: Any) -> dict[str, Any]:
    """A sensible acquisition geometry for ``modality`` and an image of ``size × size`` pixels.

    The modality's :meth:`~rfprior.modalities.Modality.make_geometry` describes it (e.g.
    :meth:`rfprior.modalities.MIMO.make_geometry`: 77–81 GHz, 8 TX × 8 RX). Keyword arguments
    are either the knobs in :func:`geometry_parameters` or the geometry fields themselves
    (e.g. ``frequencies=...``, ``mask=...``), which replace the computed ones.
    """
    return modalities.get(modality).default_geometry(size, seed=seed, **params)
