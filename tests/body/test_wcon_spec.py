"""WCON files as the spec (openworm/tracker-commons WCON_format.md) allows them, read in s / um.

Every file here is one a tracker could legitimately write; the values are checked, not only
that the read succeeds.
"""

import json
import re
import zipfile

import numpy as np
import pytest

from wormlab import body

_XY = {"x": [[1.0, 2.0], [3.0, 4.0]], "y": [[0.5, 0.5], [1.0, 1.0]]}


def _write(tmp_path, doc, name="w.wcon", encoding="utf-8"):
    p = tmp_path / name
    p.write_text(json.dumps(doc), encoding=encoding)
    return p


def test_spec_first_example_one_worm_over_two_records(tmp_path):
    """The spec's own first example: one id, single-valued t, two records."""
    doc = {"units": {"t": "seconds", "x": "mm", "y": "mm"},
           "metadata": {"strain": "N2", "who": "Rex Kerr"},
           "data": [{"id": "1", "t": 0.0, "x": [17.2, 17.3, 17.9, 18.6, 18.8],
                     "y": [2, 2.8, 3.3, 3.7, 4.6]},
                    {"id": "1", "t": 0.3, "x": [16.4, 16.9, 17.5, 18.1, 18.4],
                     "y": [1.8, 2.4, 3, 3.4, 4.3]}]}
    w = body.read_wcon(_write(tmp_path, doc))
    assert list(w) == ["1"]
    np.testing.assert_allclose(w["1"]["t_s"], [0.0, 0.3])
    np.testing.assert_allclose(w["1"]["points_um"][1, :, 0],
                               [16400, 16900, 17500, 18100, 18400])


def test_interleaved_ids_merge_in_time_order(tmp_path):
    doc = {"units": {"t": "s", "x": "mm", "y": "mm"},
           "data": [{"id": 1, "t": 1.4, "x": [15.21, 16.09], "y": [24.85, 24.58]},
                    {"id": 2, "t": 1.3, "x": [22.01, 22.35], "y": [8.06, 8.96]},
                    {"id": 1.0, "t": 1.3, "x": [15.11, 16.01], "y": [24.89, 24.63]}]}
    w = body.read_wcon(_write(tmp_path, doc))
    assert sorted(w) == ["1", "2"]
    np.testing.assert_allclose(w["1"]["t_s"], [1.3, 1.4])
    np.testing.assert_allclose(w["1"]["points_um"][:, 0, 0], [15110, 15210])


@pytest.mark.parametrize(("t_unit", "t_s"), [
    ("s", 1.0), ("sec", 1.0), ("ms", 1e-3), ("milliseconds", 1e-3), ("min", 60.0),
    ("minutes", 60.0), ("h", 3600.0), ("0.04*s", 0.04), ("1/25*s", 0.04),
])
@pytest.mark.parametrize(("x_unit", "um"), [
    ("mm", 1e3), ("um", 1.0), ("\u00b5m", 1.0), ("\u03bcm", 1.0), ("micron", 1.0),
    ("microns", 1.0), ("micrometres", 1.0), ("millimeters", 1e3), ("cm", 1e4), ("m", 1e6),
    ("in", 25400.0), ("in/72", 25400.0 / 72),
])
def test_units_the_spec_lists_are_converted(tmp_path, t_unit, t_s, x_unit, um):
    doc = {"units": {"t": t_unit, "x": x_unit, "y": x_unit},
           "data": [{"id": "w", "t": [0, 2], **_XY}]}
    w = body.read_wcon(_write(tmp_path, doc))["w"]
    np.testing.assert_allclose(w["t_s"], [0, 2 * t_s])
    np.testing.assert_allclose(w["points_um"][..., 0], np.array(_XY["x"]) * um)


@pytest.mark.parametrize("unit", ["furlong", "mm^2", "mm/s", "s", "0*mm", "Mmm"])
def test_unknown_or_non_length_units_are_named(tmp_path, unit):
    doc = {"units": {"t": "s", "x": unit, "y": "mm"}, "data": [{"id": 1, "t": [0, 2], **_XY}]}
    p = _write(tmp_path, doc)
    with pytest.raises(ValueError, match=re.escape(f"unsupported length unit '{unit}' for x")) as err:
        body.read_wcon(p)
    assert str(p) in str(err.value)


def test_origin_and_centroid_follow_the_spec(tmp_path):
    """``ox``/``oy`` shift x, y and the centroid; without them the centroid is the origin."""
    doc = {"units": {"t": "s", "x": "mm", "y": "mm", "cx": "mm", "cy": "mm", "ox": "mm",
                     "oy": "mm"},
           "data": [{"id": 1, "t": 1.3, "x": [7.2, 8.1], "y": [0.5, 0.3], "ox": 32.4,
                     "oy": 9.2, "cx": 7.676, "cy": 0.384},
                    {"id": 2, "t": [0, 1], "x": [[-0.1, 0.1], [-0.1, 0.1]],
                     "y": [[0, 0], [0, 0]], "cx": [10, 11], "cy": [5, 5]}]}
    w = body.read_wcon(_write(tmp_path, doc))
    np.testing.assert_allclose(w["1"]["points_um"][0], [[39600, 9700], [40500, 9500]])
    np.testing.assert_allclose(w["1"]["com_um"], [[40076, 9584]])
    np.testing.assert_allclose(w["2"]["points_um"][1, :, 0], [10900, 11100])
    np.testing.assert_allclose(w["2"]["com_um"][:, 0], [10000, 11000])


def test_written_files_say_their_origin_and_old_own_files_still_read(tmp_path):
    """Our files carry ``ox = oy = 0`` (absolute x, y for every WCON reader); a file written
    before that (centroid, no origin, our software name) keeps reading as absolute."""
    T = 3
    tan = np.pi + 0.1 * np.sin(np.arange(25))[None, None] * np.ones((T, 1, 1))
    com = np.cumsum(np.ones((T, 1, 2)), 0) * 500.0
    tr = body.Trajectory(np.arange(T) * 0.04, com, tan, body_length_um=1000.0)
    p = body.write_wcon(tmp_path / "w.wcon", tr, ids=["a"])
    doc = json.loads(p.read_text())
    assert doc["data"][0]["ox"] == 0 and doc["units"]["ox"] == "mm"
    for d in (doc, {**doc, "units": {k: v for k, v in doc["units"].items() if k[0] != "o"},
                    "data": [{k: v for k, v in doc["data"][0].items() if k[0] != "o"}]}):
        back = body.read_wcon(_write(tmp_path, d, "v.wcon"))["a"]
        np.testing.assert_allclose(back["points_um"], tr.points_um[:, 0], atol=1e-3)
        np.testing.assert_allclose(back["com_um"], tr.com_um[:, 0], atol=1e-3)


def test_head_at_the_last_point_is_reversed_to_head_first(tmp_path):
    doc = {"units": {"t": "s", "x": "mm", "y": "mm"},
           "data": [{"id": 1, "t": [0, 1], "x": [[1, 2, 3], [1, 2, 3]],
                     "y": [[0, 0, 0], [0, 0, 0]], "head": ["R", "L"]},
                    {"id": 2, "t": 0, "x": [1, 2], "y": [0, 0], "head": "R"}]}
    w = body.read_wcon(_write(tmp_path, doc))
    np.testing.assert_allclose(w["1"]["points_um"][..., 0], [[3000, 2000, 1000],
                                                             [1000, 2000, 3000]])
    np.testing.assert_allclose(w["2"]["points_um"][0, :, 0], [2000, 1000])


def test_varying_point_count_nulls_and_custom_keys(tmp_path):
    doc = {"units": {"t": "s", "x": "mm", "y": "mm", "speed": "mm/s"},
           "@OMG": {"feature_order": ["speed"]},
           "data": [{"id": 1, "t": [0, 1], "x": [[1, 2, 3], [4, None]],
                     "y": [[0, 0, 0], [0, None]], "head": ["R", "R"],
                     "@OMG": {"feature_values": [0.3]}}]}
    w = body.read_wcon(_write(tmp_path, doc))["1"]
    np.testing.assert_allclose(w["points_um"][..., 0], [[3000, 2000, 1000],
                                                        [np.nan, 4000, np.nan]])


def test_zipped_and_bom_files(tmp_path):
    doc = {"units": {"t": "ms", "x": "um", "y": "um"},
           "data": {"id": 3, "t": [0, 40], "x": [[1, 2], [3, 4]], "y": [[1, 2], [3, 4]]}}
    z = tmp_path / "w.wcon.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as f:
        f.writestr("w.wcon", json.dumps(doc))
    bom = _write(tmp_path, doc, "bom.wcon", encoding="utf-8-sig")
    for p in (z, bom):
        np.testing.assert_allclose(body.read_wcon(p)["3"]["t_s"], [0, 0.04])
    empty = tmp_path / "e.wcon.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(ValueError, match=f"{empty}: zip archive holds no WCON file"):
        body.read_wcon(empty)


@pytest.mark.parametrize(("records", "message"), [
    ([{"id": 1, "t": [0, 1], **_XY}, {"id": 1, "t": 1, "x": [1, 2], "y": [1, 2]}],
     "records overlap in time"),
    ([{"id": 1, "t": [0, 1], **_XY, "head": ["R"] * 3}], "'head' must be one value or one"),
    ([{"id": 1, "t": [0, 1], **_XY, "ox": 1}], "only one of 'ox', 'oy'"),
    ([{"id": 1, "t": [0, 1], "x": [[1, 2, 3], [3, 4]], "y": [[1, 2], [3, 4, 5]]}],
     "x and y shapes differ"),
    ([{"id": 1, "t": [0, 1, 2], "x": [[1, 2, 3], [3, 4]], "y": [[1, 2, 3], [3, 4]]}],
     "'x' has 2 point lists for 3 times"),
])
def test_inconsistent_records_are_named(tmp_path, records, message):
    p = _write(tmp_path, {"units": {"t": "s", "x": "mm", "y": "mm"}, "data": records})
    with pytest.raises(ValueError, match=message) as err:
        body.read_wcon(p)
    assert str(p) in str(err.value)
