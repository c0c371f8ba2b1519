"""Batched BiCGSTAB (operators.krylov): each system solved to its tolerance, warm starts, failures."""

import pytest
import torch

from operators.krylov import ConvergenceError, _norm, bicgstab


def _systems(n_sys: int = 3, n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-Hermitian, well-conditioned complex matrices ``(S, n·n, n·n)``, right-hand sides ``(S, n, n)``."""
    g = torch.Generator().manual_seed(seed)
    m = n * n
    a = torch.randn(n_sys, m, m, generator=g, dtype=torch.complex128) / (2 * m**0.5)
    shift = torch.tensor([1.0, 2.0, 4.0][:n_sys], dtype=torch.complex128)[:, None, None]
    a = a + shift * torch.eye(m, dtype=torch.complex128)
    b = torch.randn(n_sys, n, n, generator=g, dtype=torch.complex128)
    return a, b


def _apply(a: torch.Tensor):
    return lambda x: (a @ x.reshape(*x.shape[:-2], -1, 1)).reshape(x.shape)


def test_every_system_reaches_its_tolerance():
    a, b = _systems()
    x, info = bicgstab(_apply(a), b, tol=1e-10)
    exact = torch.linalg.solve(a, b.reshape(3, -1)).reshape(b.shape)
    res = torch.linalg.vector_norm(b - _apply(a)(x), dim=(-2, -1)) / torch.linalg.vector_norm(b, dim=(-2, -1))
    assert float(res.max()) <= 1e-10
    assert info.residual <= 1e-10 and info.iterations > 1
    torch.testing.assert_close(x, exact, rtol=1e-8, atol=1e-8)


def test_a_warm_start_at_the_solution_needs_no_iteration():
    a, b = _systems()
    x, _ = bicgstab(_apply(a), b, tol=1e-10)
    _, info = bicgstab(_apply(a), b, x, tol=1e-8)
    assert info.iterations == 0


def test_too_few_iterations_raise_with_the_residual():
    a, b = _systems()
    with pytest.raises(ConvergenceError, match="my solve: the solve did not converge") as err:
        bicgstab(_apply(a), b, tol=1e-12, max_iter=2, what="my solve")
    assert err.value.iterations == 2 and err.value.residual > 1e-12


@pytest.mark.parametrize("view", ["plain", "conj", "strided", "expanded"])
def test_complex_norm_matches_vector_norm(view):
    a = torch.randn(3, 4, 5, 6, dtype=torch.complex64)
    t = {"plain": a, "conj": a.conj(), "strided": a[..., ::2, 1:], "expanded": a[:1].expand(7, 4, 5, 6)}[view]
    torch.testing.assert_close(_norm(t, (2, 3)), torch.linalg.vector_norm(t, dim=(2, 3), keepdim=True))
