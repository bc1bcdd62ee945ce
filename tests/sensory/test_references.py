"""Reference responses: the shipped file, its validation and the parametric form."""

import copy
import json

import numpy as np
import pytest

from wormlab import sensory
from wormlab.sensory import _references as R


@pytest.fixture(scope="module")
def doc():
    return json.loads(R.REFERENCES_FILE.read_text())


def test_shipped_file_loads_and_is_labelled(doc):
    refs = sensory.load_references()
    assert tuple(refs) == sensory.MODALITIES
    for m, r in refs.items():
        assert r.kind == sensory.KIND_RECONSTRUCTED
        assert len(r.protocols) >= 2 and r.heldout and r.train
        assert set(r.heldout).isdisjoint(r.train)
        assert r.sources and all("cite" in s and "figure" in s for s in r.sources)
        assert r.units == sensory.UNITS[m]


def test_shipped_file_is_what_the_specs_generate(doc):
    """A hand-edited or stale references.json (curves that no longer follow the stated
    parameters) fails here."""
    assert doc == json.loads(json.dumps(R.build_references()))


def _bad(doc, edit):
    d = copy.deepcopy(doc)
    edit(d["modalities"])
    return d


def test_unknown_neuron_is_named(doc):
    def edit(m):
        m["nacl"]["neurons"][0] = "ASEX"
        for p in m["nacl"]["protocols"].values():
            p["response"]["ASEX"] = p["response"].pop("ASEL")

    d = _bad(doc, edit)
    with pytest.raises(sensory.ReferenceError, match="ASEX.*connectome"):
        sensory.parse_references(d, "refs.json")


def test_nan_is_located(doc):
    def edit(m):
        m["odour"]["protocols"]["off_92_0"]["response"]["AWCL"][7] = float("nan")

    with pytest.raises(sensory.ReferenceError, match=r"off_92_0.*AWCL.*index 7"):
        sensory.parse_references(_bad(doc, edit), "refs.json")


def test_shape_and_structure_errors(doc):
    def short(m):
        m["touch"]["protocols"]["anterior_10"]["stimulus"].pop()

    with pytest.raises(sensory.ReferenceError, match="anterior_10.*stimulus.*expected"):
        sensory.parse_references(_bad(doc, short), "refs.json")

    def missing_curve(m):
        del m["noxious"]["protocols"]["glycerol_1M"]["response"]["ASHR"]

    with pytest.raises(sensory.ReferenceError, match="no curve for.*ASHR"):
        sensory.parse_references(_bad(doc, missing_curve), "refs.json")

    def heldout(m):
        m["temperature"]["heldout"] = ["nope"]

    with pytest.raises(sensory.ReferenceError, match="heldout.*nope"):
        sensory.parse_references(_bad(doc, heldout), "refs.json")

    d = copy.deepcopy(doc)
    d["modalities"]["smell"] = d["modalities"].pop("odour")
    with pytest.raises(sensory.ReferenceError, match="smell"):
        sensory.parse_references(d, "refs.json")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(sensory.ReferenceError, match="not found"):
        sensory.load_references(tmp_path / "none.json")


def test_kernel_peak_is_one_for_a_transient():
    u = np.arange(0, 30, 0.001)
    k = R.kernel(u, 0.2, 0.5, 3.0, 0.0)
    assert abs(k.max() - 1.0) < 1e-4
    assert k[u < 0.2].max() == 0.0


def test_published_signs():
    """ON/OFF signs and the AFD threshold as the cited papers describe them."""
    refs = sensory.load_references()
    nacl = refs["nacl"].protocols
    assert nacl["up_0_50"].response["ASEL"].max() > 0.1          # ASEL ON
    assert nacl["down_50_0"].response["ASER"].max() > 0.2        # ASER OFF
    assert nacl["up_0_50"].response["ASER"].min() < 0            # ASER falls on upsteps
    odour = refs["odour"].protocols
    assert odour["off_920_0"].response["AWCL"].max() > 0.3       # AWC rises on removal
    assert odour["on_0_920"].response["AWCL"].min() < 0          # ... falls on addition
    temp = refs["temperature"].protocols
    assert temp["warm_18_21"].response["AFDL"].max() > 0.2       # warming above T*
    assert abs(temp["warm_13_16"].response["AFDL"]).max() < 0.01  # below T*: silent
    touch = refs["touch"].protocols
    assert touch["anterior_10"].response["ALML"].max() > 0.05
    assert abs(touch["anterior_10"].response["PLML"]).max() == 0.0
    assert touch["posterior_10"].response["PLMR"].max() > 0.05
