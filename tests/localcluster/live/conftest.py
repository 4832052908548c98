"""The live suite needs the local cluster running (`make localcluster-up`); CI keeps it a skip."""

from __future__ import annotations

import pytest

from localcluster import cluster
from tests.conftest import skip_for_mode


@pytest.fixture(scope="session")
def running_cluster() -> None:
    if not cluster.running():
        skip_for_mode("the local cluster is not running: `make localcluster-up` starts it")
