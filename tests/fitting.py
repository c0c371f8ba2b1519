"""Shared test helper: fit a prior's output directly to a target image (no operator)."""

from __future__ import annotations

import torch


def fit_to(prior: torch.nn.Module, target: torch.Tensor, iterations: int, lr: float = 0.01) -> float:
    """Adam on ``‖prior()[0] − target‖²`` for ``iterations`` steps; returns the relative error at the end."""
    opt = torch.optim.Adam(prior.parameters(), lr=lr)
    for _ in range(iterations):
        opt.zero_grad()
        (prior()[0] - target).abs().square().sum().backward()
        opt.step()
    with torch.no_grad():
        return float(torch.linalg.vector_norm(prior()[0] - target) / torch.linalg.vector_norm(target))
