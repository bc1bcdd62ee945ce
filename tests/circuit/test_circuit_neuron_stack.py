"""One availability check for the NEURON/c302 stack, and what happens when a piece is missing:
clear errors from the adapter, a skip with the reason locally, a failure under CI."""

import importlib.util

import pytest

from wormlab import circuit
from wormlab.circuit import reference

from .conftest import full_net_or_skip, pytest_runtest_setup, skip_or_fail

_real_find_spec = importlib.util.find_spec


def _outcome(fn, *args):
    """("skip" | "fail" | "ok", message): a skip where a failure is due must fail this test,
    not turn it into a skip (pytest.raises(Failed) would let a Skipped through)."""
    try:
        fn(*args)
    except pytest.fail.Exception as exc:
        return "fail", str(exc)
    except pytest.skip.Exception as exc:
        return "skip", str(exc)
    return "ok", ""


@pytest.fixture
def without(monkeypatch, tmp_path):
    """``without("c302", "java")``: pretend those are not installed (in an empty cache)."""
    monkeypatch.setenv("WORMLAB_CACHE", str(tmp_path))  # no cached c302 network to fall on
    real_which = reference.shutil.which

    def hide(*names):
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda n, *a: None if n in names else _real_find_spec(n, *a))
        monkeypatch.setattr(reference.shutil, "which",
                            lambda n, *a, **k: None if n in names else real_which(n, *a, **k))
        reference.neuron_missing.cache_clear()

    yield hide
    reference.neuron_missing.cache_clear()


def test_missing_pieces_are_named_with_the_fix(without):
    without("neuron", "java")
    reason = reference.neuron_missing()
    assert "'neuron' is not installed" in reason and "'java' is not on PATH" in reason
    assert "c302" not in reason  # only what is really missing
    assert not reference.neuron_available()
    with pytest.raises(reference.NeuronStackMissing, match="setup.sh"):
        reference.require_neuron("the test")
    with pytest.raises(reference.NeuronStackMissing, match="java"):
        reference.reference("Full", 20.0)  # fails before generating anything
    from wormlab.rom._generate import resolve_backend

    with pytest.raises(reference.NeuronStackMissing, match="backend 'neuron'"):
        resolve_backend("neuron")


def test_rom_uses_the_circuit_adapter():
    from wormlab.rom import _neuron

    assert _neuron.neuron_available is reference.neuron_available
    assert _neuron.neuron_network is reference.neuron_network


def test_skip_or_fail_follows_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert _outcome(skip_or_fail, "why") == ("skip", "why")
    monkeypatch.setenv("CI", "true")
    kind, msg = _outcome(skip_or_fail, "why")
    assert kind == "fail" and "CI requires" in msg and "why" in msg


def test_full_net_fixture_without_c302_skips_locally_fails_in_ci(without, monkeypatch):
    """The real chain: build_network -> c302_network_path -> generate_c302 without c302."""
    without("c302")
    with pytest.raises(reference.NeuronStackMissing, match="'c302'"):
        circuit.build_network()
    monkeypatch.delenv("CI", raising=False)
    kind, msg = _outcome(full_net_or_skip)
    assert kind == "skip" and "c302 network unavailable" in msg and "'c302'" in msg
    monkeypatch.setenv("CI", "true")
    kind, msg = _outcome(full_net_or_skip)
    assert kind == "fail" and "c302 network unavailable" in msg


def test_full_net_fixture_lets_other_errors_through():
    def broken():
        raise reference.ReferenceError("c302 generation failed (rc 1)")

    with pytest.raises(reference.ReferenceError, match="rc 1"):
        full_net_or_skip(broken)


def test_cached_reference_needs_no_neuron(without):
    """Reading a cached reference (notebook smoke mode) works without java/NEURON."""
    import json

    import numpy as np

    from wormlab.paths import cache_dir

    meta, key = reference._meta_key("Full", 20.0, 0.05, "cvode", 1e-7, "C1")
    d = cache_dir("circuit", "reference", key)  # inside the test's WORMLAB_CACHE
    np.savez(d / "traces.npz", t_ms=np.arange(3.0), v_mV=np.zeros((3, 1)), names=np.array(["A"]))
    (d / "meta.json").write_text(json.dumps({**meta, "wall_s": 1.0, "nml": "x.net.nml"}))
    without("neuron", "java")
    ref = reference.reference("Full", 20.0)
    assert ref.names == ["A"] and ref.v_mV.shape == (3, 1) and ref.wall_s == 1.0
    with pytest.raises(reference.NeuronStackMissing):
        reference.reference("Full", 20.0, refresh=True)  # re-running NEURON does need it


def test_neuron_marked_tests_skip_locally_fail_in_ci(without, monkeypatch):
    """The conftest hook that guards every ``@pytest.mark.neuron`` test in tests/circuit."""

    class Item:
        def __init__(self, marked):
            self.marked = marked

        def get_closest_marker(self, name):
            return pytest.mark.neuron.mark if self.marked and name == "neuron" else None

    without("nrnivmodl")
    monkeypatch.setenv("CI", "true")
    assert _outcome(pytest_runtest_setup, Item(marked=False)) == ("ok", "")  # unmarked: no-op
    kind, msg = _outcome(pytest_runtest_setup, Item(marked=True))
    assert kind == "fail" and "CI requires" in msg and "nrnivmodl" in msg
    monkeypatch.delenv("CI", raising=False)
    kind, msg = _outcome(pytest_runtest_setup, Item(marked=True))
    assert kind == "skip" and "nrnivmodl" in msg
