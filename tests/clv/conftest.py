from __future__ import annotations

import pytest

from fidelite.clv.triples import Triples, compress
from tests.clv.cdnow import Cdnow, load_cdnow


@pytest.fixture(scope="session")
def cdnow() -> Cdnow:
    return load_cdnow()


@pytest.fixture(scope="session")
def cdnow_triples(cdnow: Cdnow) -> Triples:
    return compress(cdnow.x, cdnow.t_x, cdnow.T, resolution=1 / 7)
