"""Arena fields, the YAML format and its validation (issue 18 item 3)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from wormlab import loop
from wormlab.loop import Arena, ArenaError, Constant, Field, Gaussian, Linear, Step

ARENAS = Path(loop.__file__).parent / "arenas"


@pytest.mark.parametrize("path", sorted(ARENAS.glob("*.yml")), ids=lambda p: p.stem)
def test_shipped_arenas_load_and_round_trip(path, tmp_path):
    a = loop.load_arena(path)
    assert set(a.units) <= set(loop.MODALITIES)
    b = loop.load_arena(loop.save_arena(a, tmp_path / "copy.yml"))
    assert b == a
    xy = np.random.default_rng(0).uniform(-0.7, 0.7, (50, 2)) * a.radius_um
    for t in (0.0, 15.0, 30.0):
        for m in a.units:
            np.testing.assert_array_equal(a.sample(xy, t)[m], b.sample(xy, t)[m])


def test_field_kinds_match_closed_forms():
    R = 10.0
    xy = np.array([[0.0, 0.0], [2000.0, 0.0], [0.0, -3000.0], [-4000.0, 1000.0]])
    x, y = xy[:, 0] / 1000, xy[:, 1] / 1000

    def one(c, mod="nacl", unit="mM"):
        return Arena(radius_mm=R, fields=(Field(mod, unit, (c,)),)).sample(xy)[mod]

    np.testing.assert_allclose(one(Constant(value=7.0)), 7.0)
    np.testing.assert_allclose(
        one(Linear(value_at_centre=50, slope_per_mm=2, direction_deg=90)), 50 + 2 * y)
    np.testing.assert_allclose(
        one(Gaussian(peak=10, centre_mm=(1.0, 2.0), sigma_mm=3, background=1)),
        1 + 10 * np.exp(-((x - 1) ** 2 + (y - 2) ** 2) / 18))
    np.testing.assert_allclose(one(Step(low=1, high=4, at_mm=(-1.0, 0.0), direction_deg=180)),
                               np.where(x <= -1, 4.0, 1.0))
    smooth = one(Step(low=0, high=1, at_mm=(0.0, 0.0), width_mm=2.0))
    np.testing.assert_allclose(smooth, 1 / (1 + np.exp(-x / 2)))
    # a sum of components and a switch in time
    a = Arena(radius_mm=R, fields=(Field("temperature", "degC", (
        Constant(value=20.0, t_off_s=5.0), Linear(value_at_centre=0, slope_per_mm=-0.5),
        Constant(value=15.0, t_on_s=5.0))),))
    np.testing.assert_allclose(a.sample(xy, 0.0)["temperature"], 20 - 0.5 * x)
    np.testing.assert_allclose(a.sample(xy, 5.0)["temperature"], 15 - 0.5 * x)
    np.testing.assert_allclose(a.sample(xy, np.array([0, 9, 0, 9.0]))["temperature"],
                               [20, 14, 20, 17])


def test_torch_positions_give_torch_values_and_gradients():
    import torch

    a = loop.load_arena(ARENAS / "nacl_local.yml")  # 5 mM/mm along +x
    xy = torch.tensor([[100.0, 200.0], [-1500.0, 30.0]], dtype=torch.float64,
                      requires_grad=True)
    v = a.sample(xy)["nacl"]
    assert isinstance(v, torch.Tensor) and v.shape == (2,)
    v.sum().backward()
    np.testing.assert_allclose(xy.grad.numpy(), [[5e-3, 0.0], [5e-3, 0.0]], atol=1e-12)
    np.testing.assert_allclose(v.detach().numpy(), a.sample(xy.detach().numpy())["nacl"])


def test_outside_positions_raise_naming_the_member_unless_clipped():
    a = loop.load_arena(ARENAS / "nacl_local.yml")
    xy = np.array([[0.0, 0.0], [4000.0, 0.0], [0.0, 6000.0]])
    assert a.inside(xy).tolist() == [True, True, False]
    with pytest.raises(ArenaError, match=r"member 2 at \(0\.0, 6000\.0\) um.*nacl_local"):
        a.sample(xy)
    v = a.sample(xy, clip=True)["nacl"]
    np.testing.assert_allclose(v, [50.0, 70.0, 50.0])  # (0, 6000) -> rim at (0, 5000)
    v = a.sample(np.array([[8000.0, 0.0]]), clip=True)["nacl"]
    np.testing.assert_allclose(v, [75.0])
    with pytest.raises(ArenaError, match="NaN or inf"):
        a.sample(np.array([[np.nan, 0.0]]))
    with pytest.raises(ArenaError, match=r"\(B, 2\)"):
        a.sample(np.zeros((3, 3)))


def test_peak_location():
    a = loop.load_arena(ARENAS / "nacl_gradient.yml")
    np.testing.assert_allclose(a.peak_um("nacl"), [30000.0, 0.0])
    b = loop.load_arena(ARENAS / "nacl_local.yml")
    np.testing.assert_allclose(b.peak_um("nacl"), [5000.0, 0.0], atol=60)
    with pytest.raises(KeyError, match="no 'odour' field"):
        b.peak_um("odour")


GOOD = """\
arena: {name: t, radius_mm: 5.0}
fields:
  nacl:
    unit: mM
    components:
      - {kind: gaussian, peak: 10.0, centre_mm: [1.0, 0.0], sigma_mm: 2.0, background: 1.0}
"""

BAD = [
    ("extra: 1\n" + GOOD, r"unknown key\(s\) \['extra'\] in the top level"),
    (GOOD.replace("radius_mm: 5.0}", "radius_mm: 5.0, colour: red}"),
     r"unknown key\(s\) \['colour'\] in arena"),
    (GOOD.replace("sigma_mm: 2.0", "sigma_mm: 2.0, sigma: 3"),
     r"unknown key\(s\) \['sigma'\] in fields.nacl.components\[0\]"),
    (GOOD.replace("peak: 10.0", "peak: .nan"), r"fields.nacl.components\[0\].peak must be finite"),
    (GOOD.replace("[1.0, 0.0]", "[6.0, 0.0]"),
     r"fields.nacl.components\[0\].centre_mm=\[6.0, 0.0\] is outside the arena"),
    (GOOD.replace("background: 1.0", "background: -1.0"),
     r"fields.nacl.components\[0\].background=-1.0 is negative"),
    (GOOD.replace("unit: mM", "unit: M"), r"fields.nacl.unit='M' is not the unit of nacl"),
    (GOOD.replace("nacl:", "salt:"), r"unknown modality fields.salt"),
    (GOOD.replace("kind: gaussian", "kind: ramp"), r"components\[0\].kind='ramp'"),
    (GOOD.replace("sigma_mm: 2.0", "sigma_mm: 0"), r"sigma_mm=0.0 must be > 0"),
    (GOOD.replace("peak: 10.0", "peak: '10'"), r"components\[0\].peak must be a number"),
    (GOOD.replace("radius_mm: 5.0", "radius_mm: -5"), r"arena.radius_mm=-5.0 must be in"),
    (GOOD.replace("  - {kind: gaussian, peak: 10.0, centre_mm: [1.0, 0.0], sigma_mm: 2.0, "
                  "background: 1.0}",
                  "  - {kind: linear, value_at_centre: 10.0, slope_per_mm: 3.0}"),
     r"fields.nacl is negative \(-5 mM\) at \(-5, 0\) mm"),
    (GOOD.replace("nacl:", "temperature:").replace("unit: mM", "unit: degC")
     .replace("peak: 10.0", "peak: 50.0"),
     r"fields.temperature reaches 51 degC.*outside 0.0-40.0 degC \(is it in degC\?\)"),
    (GOOD.replace("sigma_mm: 2.0", "sigma_mm: 2.0, t_on_s: 5, t_off_s: 2"),
     r"t_off_s=2.0 must be after t_on_s=5.0"),
    (GOOD.replace("fields:", "fieldz:"), r"unknown key\(s\) \['fieldz'\]"),
    ("arena: [1, 2]\nfields: {}\n", r"arena must be a mapping, got list"),
    ("- 1\n", r"the top level must be a mapping"),
]


@pytest.mark.parametrize("text,msg", BAD, ids=range(len(BAD)))
def test_bad_arena_files_name_file_field_and_value(tmp_path, text, msg):
    p = tmp_path / "bad_arena.yml"
    p.write_text(text)
    with pytest.raises(ArenaError, match=msg) as exc:
        loop.load_arena(p)
    assert str(p) in str(exc.value)


def test_a_ramp_just_below_zero_at_an_odd_angle_is_caught():
    # minimum -1e-5 mM exactly at the rim point at 180.5 deg; the 1-degree rim samples miss it
    with pytest.raises(ArenaError, match="fields.nacl is negative"):
        Arena(radius_mm=5, fields=(Field("nacl", "mM", (
            Linear(value_at_centre=9.99999, slope_per_mm=2.0, direction_deg=0.5),)),))
    Arena(radius_mm=5, fields=(Field("nacl", "mM", (
        Linear(value_at_centre=10.0, slope_per_mm=2.0, direction_deg=0.5),)),))


def test_good_file_and_direct_construction_agree(tmp_path):
    p = tmp_path / "good.yml"
    p.write_text(GOOD)
    a = loop.load_arena(p)
    b = Arena(radius_mm=5.0, name="t", fields=(Field("nacl", "mM", (
        Gaussian(peak=10, centre_mm=[1.0, 0.0], sigma_mm=2, background=1),)),))
    assert a == b
    assert a.to_dict() == loop.arena_from_dict(a.to_dict()).to_dict()
    with pytest.raises(ArenaError, match="unit='uM' is not the unit of nacl"):
        Arena(radius_mm=5, fields=(Field("nacl", "uM", (Constant(value=1),)),))
    with pytest.raises(FileNotFoundError):
        loop.load_arena(tmp_path / "missing.yml")


def test_plot_arena_draws_field_and_tracks():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = loop.load_arena(ARENAS / "nacl_local.yml")
    t = np.linspace(0, 1, 20)
    tracks = np.stack([np.stack([t * 3000, t * 0], -1), np.stack([-t * 2000, t * 1000], -1)], 1)
    ax = loop.plot_arena(a, tracks, title="synthetic tracks")
    assert ax.get_title() == "synthetic tracks"
    assert len(ax.images) == 1 and len(ax.lines) >= 1 + 3 * 2
    img = ax.images[0].get_array()
    assert math.isclose(float(np.nanmax(img)), 75.0, rel_tol=1e-3)
    plt.close(ax.figure)
    with pytest.raises(ArenaError, match=r"\(T, B, 2\)"):
        loop.plot_arena(a, np.zeros((5, 2, 3)))
