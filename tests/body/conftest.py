"""Shared fixtures of the body tests."""

import pytest


@pytest.fixture(scope="module")
def client():
    """An in-process dask.distributed client (one worker, one thread) for the generator."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                           dashboard_address=":0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()
