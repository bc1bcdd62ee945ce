"""``wormlab fit score --json/--smoke`` and ``wormlab fit polarity`` (CLI)."""

from __future__ import annotations

import json

from wormlab import circuit
from wormlab.fit import cli, save_params

CELLS = ("AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "DB1", "VB1", "RIML", "AIBL")


def test_score_writes_json_rows(tmp_path, capsys):
    params = tmp_path / "p.json"
    save_params(circuit.build_network(cells=CELLS), params)
    out = tmp_path / "card.json"
    assert cli.main(["score", str(params), "--smoke", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["smoke"] is True and d["params"] == str(params)
    targets = [r["target"] for r in d["rows"]]
    assert "tier2_correlation_structure" in targets and "tier3_defecation_period" in targets
    row = next(r for r in d["rows"] if r["target"] == "tier2_correlation_structure")
    assert row["status"] == "ok" and 0.0 <= row["value"] <= 4.0
    assert "wrote" in capsys.readouterr().out


def test_polarity_cli_errors_name_the_file(tmp_path, capsys):
    assert cli.main(["polarity", str(tmp_path / "missing.yml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\nepoch: 3\n")
    assert cli.main(["polarity", str(bad)]) == 2
    assert "unknown field(s) ['epoch']" in capsys.readouterr().err
