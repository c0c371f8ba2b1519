"""Shared test configuration: small problems, deterministic, single-threaded torch."""

import pytest
import torch

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(params=[torch.complex64, torch.complex128], ids=["c64", "c128"])
def cdtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param


ADJOINT_TOL = {torch.complex64: 1e-5, torch.complex128: 1e-12}
