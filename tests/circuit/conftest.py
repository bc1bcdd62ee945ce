"""Shared factories for circuit tests (small networks, short windows)."""

import pytest
import torch

from wormlab import circuit


@pytest.fixture(scope="session")
def full_net():
    """c302 C1 Full (397 cells), float64, from the shipped template when c302 is absent."""
    try:
        return circuit.build_network()
    except ImportError:
        return circuit.build_network(source="connectome")


@pytest.fixture(scope="session")
def c302_spec(full_net):
    return full_net.spec


def make_sub(spec, names, **kw):
    return circuit.build_network(circuit.subset_spec(spec, list(names)), **kw)


@pytest.fixture
def tiny(c302_spec):
    """3 connected neurons of the c302 network (chemical synapses and a gap junction)."""
    return make_sub(c302_spec, ["AVAL", "AVAR", "AVDL"])


def active_stim(names, amp_nA=0.008):
    """A step strong enough to make C1 neurons spike (5-8 pA, as c302's offset current)."""
    return circuit.Stimulus.step(list(names), amp_nA, start_ms=1.0)


torch.set_default_dtype(torch.float64)
