"""Shared test configuration: small problems, deterministic, single-threaded torch."""

import os

import pytest
import torch

# small networks run fastest single-threaded (measured ~3× vs 2 threads on 2 cores; far more under load)
torch.set_num_threads(1)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest-xdist workers on two cores: what a test starts (python -m rfprior, Dask
    # workers) inherits one thread per process too, so the workers do not oversubscribe the cores
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test runs single-threaded, even after a test (or an example it runs) changed the thread count."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(params=[torch.complex64, torch.complex128], ids=["c64", "c128"])
def cdtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


ADJOINT_TOL = {torch.complex64: 1e-5, torch.complex128: 1e-12}
