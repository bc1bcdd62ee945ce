"""The connectome layer against known facts and against cect's own tables."""

import importlib

import networkx as nx
import numpy as np
import pytest
import torch
from cect import Cells

from wormlab import connectome
from wormlab.connectome import UnknownNameError


@pytest.fixture(scope="module")
def cook():
    return connectome.load("cook2019")


def _raw(reader):
    return importlib.import_module(f"cect.readers.{reader}").get_instance(from_cache=True)


def test_cells(cook):
    assert cook.n_neurons == 302 and len(set(cook.neurons)) == 302
    assert list(cook.neurons) == list(Cells.PREFERRED_HERM_NEURON_NAMES)
    assert len(cook.muscles) == 95 and "MVL24" not in cook.muscles and "MVR24" in cook.muscles
    assert cook.chem.shape == (302, 302) and cook.neuron_muscle.shape == (302, 95)


def test_known_synapses(cook):
    assert cook.chem[cook.index("AVAL"), cook.index("AVBL")] > 0
    # PLM touch neurons gap-junction onto PVC (Chalfie et al. 1985 touch circuit)
    assert cook.gap[cook.index("PLML"), cook.index("PVCL")] > 0
    # ventral-cord motor neurons innervate body-wall muscles; AVA does not
    assert cook.neuron_muscle[cook.index("VB5")].sum() > 0
    assert cook.neuron_muscle[cook.index("AVAL")].sum() == 0


def test_counts_match_cect_tables(cook):
    raw = _raw("Cook2019HermReader")
    pos = {n: i for i, n in enumerate(raw.nodes)}
    cs, gj = raw.connections["Generic_CS"], raw.connections["Generic_GJ"]
    rows = [pos[n] for n in cook.neurons]
    np.testing.assert_array_equal(cook.chem, cs[np.ix_(rows, rows)])
    mcols = [pos[m] for m in cook.muscles]
    np.testing.assert_array_equal(cook.neuron_muscle, cs[np.ix_(rows, mcols)])
    raw_gap = gj[np.ix_(rows, rows)]
    assert np.all(cook.gap[raw_gap > 0] >= raw_gap[raw_gap > 0])  # raw entries all kept
    assert (cook.chem > 0).sum() == 3709  # shared/DATA.md: 3709 chemical entries


@pytest.mark.parametrize("name", list(connectome.DATASETS))
def test_every_dataset_loads_and_gaps_are_symmetric(name):
    c = connectome.load(name)
    assert c.n_neurons == 302
    np.testing.assert_array_equal(c.gap, c.gap.T)
    assert (c.chem >= 0).all() and c.chem.sum() > 0
    assert 150 <= c.present.sum() <= 302


def test_witvliet_alias_and_partial_coverage():
    adult = connectome.load("witvliet_8")
    assert connectome.load("witvliet2021") is adult
    assert adult.present.sum() < 302  # a nerve-ring reconstruction
    assert not adult.present[adult.index("DB3")]


def test_classes_and_types(cook):
    cls = dict(zip(cook.neurons, cook.classes))
    assert cls["AVAL"] == cls["AVAR"] == "AVA"
    assert cls["SMDDL"] == cls["SMDVR"] == "SMD"
    assert cls["DB1"] == cls["DB7"] == "DB"
    assert cls["RMEV"] == cls["RMEL"] == "RME"
    assert cls["RID"] == "RID" and cls["RIVL"] == "RIV"  # no false D/V stripping
    assert cls["IL1DL"] == "IL1" and cls["VA12"] == "VA"
    assert len(set(cook.classes)) == 118  # the 118 classes of White et al. 1986
    types = dict(zip(cook.neurons, cook.types))
    assert types["ASHL"] == "sensory" and types["AVAL"] == "inter" and types["VB3"] == "motor"
    assert cook.neurons_of_class("AVA") == ["AVAL", "AVAR"]


def test_transmitter_signs(cook):
    sign = dict(zip(cook.neurons, cook.sign))
    tx = dict(zip(cook.neurons, cook.transmitters))
    for gabaergic in ("DD1", "VD5", "RMED", "AVL", "DVB", "RIS"):
        assert tx[gabaergic] == "GABA" and sign[gabaergic] == -1, gabaergic
    assert tx["AVAL"] == "Acetylcholine" and sign["AVAL"] == 1
    assert tx["AIBL"] == "Glutamate" and sign["AIBL"] == 1


def test_unknown_names_suggest():
    c = connectome.load()
    assert c.index("VB02") == c.index("VB2") and c.index("DB01") == c.index("DB1")
    with pytest.raises(UnknownNameError, match="did you mean AVA"):
        c.index("AVAX")
    with pytest.raises(UnknownNameError, match="choose one of: cook2019"):
        connectome.load("cook2091")
    with pytest.raises(UnknownNameError, match="body-wall muscle"):
        c.muscle_index("MVL24")


def test_tensors_and_views(cook):
    a = cook.adjacency("chem", dtype=torch.float64)
    assert a.shape == (302, 302) and a.dtype == torch.float64
    assert torch.equal(cook.adjacency("gap", sparse=True).to_dense(), cook.adjacency("gap"))
    sub = cook.adjacency("chem", names=["AVAL", "AVBL"])
    assert sub[0, 1] == cook.chem[cook.index("AVAL"), cook.index("AVBL")]
    signed = cook.adjacency("signed")
    assert (signed[cook.index("DD1")] <= 0).all()
    with pytest.raises(ValueError, match="unknown adjacency kind"):
        cook.adjacency("electric")
    g = cook.to_networkx()
    assert g.number_of_nodes() == 302 + 95
    assert g.has_edge("AVAL", "AVBL") and g.has_edge("PVCL", "PLML")  # gap both ways
    assert isinstance(g, nx.MultiDiGraph)
    edges = cook.edges()
    assert (edges["kind"] == "chem").sum() == 3709
    assert len(cook.partners("AVAL")) > 20
    cls = cook.class_adjacency("chem")
    assert cls.loc["AVA", "AVB"] == cook.chem[np.ix_(cook.indices(["AVAL", "AVAR"]),
                                                      cook.indices(["AVBL", "AVBR"]))].sum()


def test_arrays_are_read_only(cook):
    with pytest.raises(ValueError):
        cook.chem[0, 0] = 1
