"""The shared config (de)serialiser (wormlab.io.config_from_dict / config_to_dict) behind the
six component configs, and the CLIs' shared JSON writer (wormlab.runs.emit_json)."""

import json
from dataclasses import dataclass, field

import pytest

from wormlab import behaviour as bh
from wormlab import body, rom, sae
from wormlab import posture as P
from wormlab import recordings as R
from wormlab.io import config_from_dict, config_to_dict
from wormlab.runs import emit_json


@dataclass(frozen=True)
class Inner:
    names: tuple[str, ...] = ()
    pair: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    items: tuple[Inner, ...] = ()
    maybe: tuple[str, ...] | None = None
    seed: int = 0


def test_nested_tuples_and_optional_round_trip_through_json():
    cfg = Outer(Inner(("a", "b"), (2.0, 3.0)), (Inner(("x",)), Inner()), ("m",), 4)
    back = config_from_dict(Outer, json.loads(json.dumps(config_to_dict(cfg))))
    assert back == cfg and isinstance(back.items[0], Inner) and back.maybe == ("m",)
    assert config_from_dict(Outer, None) == Outer() == config_from_dict(Outer, {})
    assert config_from_dict(Outer, {"maybe": None}).maybe is None


def test_unknown_keys_name_the_place_and_the_valid_fields():
    with pytest.raises(ValueError, match=r"Outer.inner: unknown field 'nmes'; valid fields: "
                                         r"names, pair"):
        config_from_dict(Outer, {"inner": {"nmes": []}})
    with pytest.raises(ValueError, match=r"Outer: unknown fields 'a', 'b'"):
        config_from_dict(Outer, {"a": 1, "b": 2})
    with pytest.raises(TypeError, match="expected a mapping"):
        config_from_dict(Outer, [1, 2])
    with pytest.raises(TypeError, match="dataclass instance"):
        config_to_dict(Outer)


CONFIGS = {
    "body": (body.BodyConfig, {"data": {"duration_s": 2.0, "n_per_family": {"nominal": 3}},
                               "surrogate": {"epochs": 3}}),
    "behaviour": (bh.BehaviourConfig, {"data": {"task": "four_state", "exclude": ["AVAL"]},
                                       "train": {"epochs": 2}}),
    "sae": (sae.ExperimentConfig, {"expansion": 2.0, "train": {"n_steps": 10},
                                   "interpret": {"n_perm": 50}}),
    "rom": (rom.RomConfig, {"model": {"kind": "lstm", "hidden": 4}, "runs": 2,
                            "split": {"fractions": [0.6, 0.2, 0.2], "train": ["s1"],
                                      "val": ["s2"], "test": ["s3"]}}),
    "posture": (P.PostureConfig, {"dataset": "synthetic", "lstm": {"layers": 1, "hidden": 8}}),
    "virtual": (R.VirtualWormConfig, {"seed": 3, "protocol": {"duration_s": 100.0}}),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_component_configs_use_the_shared_helpers(name):
    cls, partial = CONFIGS[name]
    cfg = cls.from_dict(partial)
    assert cfg.to_dict() == config_to_dict(cfg)
    assert cls.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # lists -> tuples
    assert cfg != cls(), f"{name}: the partial dict was ignored"
    section = next(k for k, v in partial.items() if isinstance(v, dict))
    with pytest.raises(ValueError, match=f"{cls.__name__}.{section}: unknown field 'bogus'"):
        cls.from_dict({**partial, section: {**partial[section], "bogus": 1}})


def test_virtual_worm_stimuli_rebuilt_as_specs():
    cfg = R.VirtualWormConfig()
    back = R.VirtualWormConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back.stimuli == cfg.stimuli and type(back.stimuli[0]) is type(cfg.stimuli[0])
    assert isinstance(back.stimuli[0].targets, tuple)


def test_emit_json_prints_and_writes_atomically(tmp_path, capsys):
    out = tmp_path / "sub" / "r.json"
    text = emit_json({"a": 1.5, "b": [1, 2]}, out, indent=None)
    assert capsys.readouterr().out == text + "\n" == '{"a": 1.5, "b": [1, 2]}\n'
    assert json.loads(out.read_text()) == {"a": 1.5, "b": [1, 2]}
    emit_json({"quiet": True}, out, echo=False)
    assert capsys.readouterr().out == "" and json.loads(out.read_text()) == {"quiet": True}
    with pytest.raises(TypeError):
        emit_json({"bad": object()}, out)
    assert json.loads(out.read_text()) == {"quiet": True}  # the old file survives
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # no temporaries left
    assert emit_json({"x": 1}) and "x" in capsys.readouterr().out  # no file: print only
