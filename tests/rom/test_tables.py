"""rom.saved_tables / generated_data_dir: what notebook 05 reads from the cache."""

import json

import pytest

from wormlab import rom


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORMLAB_CACHE", str(tmp_path))
    return tmp_path


def test_saved_tables_first_folder_wins_and_missing_are_skipped(cache):
    for folder, runs in (("results_paper", 5), ("results", 3)):
        (cache / "rom" / folder).mkdir(parents=True)
        (cache / "rom" / folder / "arch.json").write_text(json.dumps({"rows": {}, "runs": runs}))
    (cache / "rom" / "results" / "long.json").write_text(json.dumps({"rows": {}, "runs": 1}))
    found = rom.saved_tables()
    assert [(n, p.parent.name, t["runs"]) for n, p, t in found] == [
        ("arch", "results_paper", 5), ("long", "results", 1)]


def test_saved_tables_bad_file_and_unknown_name(cache):
    (cache / "rom" / "results").mkdir(parents=True)
    bad = cache / "rom" / "results" / "sweep.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="sweep.json: not a rom experiment table"):
        rom.saved_tables()
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="no 'rows' object"):
        rom.saved_tables(["sweep"])
    with pytest.raises(ValueError, match="unknown rom tables.*nope"):
        rom.saved_tables(["nope"])


def test_generated_data_dir_is_in_the_cache_and_separates_smoke(cache):
    backend, full = rom.generated_data_dir("circuit")
    _, smoke = rom.generated_data_dir("circuit", smoke=True)
    assert backend == "circuit" and full == cache / "rom" / "synthetic_circuit_forward"
    assert smoke.name == "synthetic_circuit_forward_smoke" and smoke.is_dir()
    with pytest.raises(ValueError, match="unknown backend"):
        rom.generated_data_dir("spice")
