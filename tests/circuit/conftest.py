"""Shared factories for circuit tests (small networks, short windows)."""

import pytest

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


def _make_sub(spec, names, **kw):
    return circuit.build_network(circuit.subset_spec(spec, list(names)), **kw)


def _active_stim(names, amp_nA=0.008):
    """A step strong enough to make C1 neurons spike (5-8 pA, as c302's offset current)."""
    return circuit.Stimulus.step(list(names), amp_nA, start_ms=1.0)


@pytest.fixture(scope="session")
def make_sub():
    """``make_sub(spec, names, **config)``: a sub-circuit network."""
    return _make_sub


@pytest.fixture(scope="session")
def active_stim():
    return _active_stim


@pytest.fixture
def tiny(c302_spec):
    """3 connected neurons of the c302 network (chemical synapses and a gap junction)."""
    return _make_sub(c302_spec, ["AVAL", "AVAR", "AVDL"])

