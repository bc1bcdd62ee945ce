import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WORMLAB_PROGRESS", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    from wormlab.runs import configure_torch

    configure_torch(1)


# Hypothesis: local runs and CI try the same inputs. The "fixed" profile derandomizes (each
# test's examples follow from its own source and the hypothesis version), keeps no example
# database (a local database would replay earlier failures that CI never sees) and leaves the
# budget to each test's @settings(max_examples=...). A failure found this way is kept as an
# @example(...) on the test. `--hypothesis-profile=explore` opts in to random exploration.
# The terminal summary says which profile ran and how many examples each test tried.
try:
    from hypothesis import settings
except ImportError:  # pragma: no cover
    settings = None
else:
    settings.register_profile("fixed", derandomize=True, database=None, print_blob=True,
                              deadline=None)
    settings.register_profile("ci", parent=settings.get_profile("fixed"))  # old name
    settings.register_profile("explore", derandomize=False, database=None, print_blob=True,
                              deadline=None)
    settings.load_profile("fixed")

_HYPOTHESIS_RUNS: list[tuple[str, str, str]] = []


def _hypothesis_seed(item) -> str:
    """The seed a derandomized run uses: hypothesis's digest of the test function."""
    try:
        from hypothesis.internal.reflection import function_digest

        fixed = getattr(item.obj, "_hypothesis_internal_use_seed", None)  # an explicit @seed
        if fixed is not None:
            return str(fixed)
        return function_digest(item.obj.hypothesis.inner_test).hex()[:16]
    except Exception:  # noqa: BLE001  (internal API; the count is still reported)
        return "?"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    stats = getattr(item, "hypothesis_statistics", None)
    if call.when == "call" and stats:
        tried = [line.strip(" -") for line in stats.splitlines()
                 if "passing" in line or "Stopped because" in line]
        _HYPOTHESIS_RUNS.append((item.nodeid, _hypothesis_seed(item), "; ".join(tried)))


def pytest_terminal_summary(terminalreporter):
    if not _HYPOTHESIS_RUNS or settings is None:
        return
    import hypothesis

    cur = settings.default
    tr = terminalreporter
    tr.section("hypothesis inputs")
    tr.write_line(f"hypothesis {hypothesis.__version__}, profile {settings._current_profile!r}: "
                  f"derandomize={cur.derandomize}, database={cur.database}")
    for nodeid, seed, tried in _HYPOTHESIS_RUNS:
        tr.write_line(f"{nodeid}: seed {seed if cur.derandomize else '(random)'}; {tried}")


# ---------------------------------------------------------------- shared tiny trained models
def _tiny_shipped_body_surrogate(epochs: int = 4, generate_command: str = "tiny gen",
                                 train_command: str = "tiny train"):
    """In the current ``WORMLAB_MODELS`` / ``WORMLAB_CACHE``: a tiny generator store (13 samples
    of 1 s, in process) and a tiny surrogate trained on it, shipped as ``body_surrogate``.
    Returns the store path; the trained checkpoint stays at the cache's default path."""
    import dataclasses
    import json

    from wormlab.body import _paths as P
    from wormlab.body._config import DataConfig, MuscleConfig, PhysicsConfig, SurrogateConfig
    from wormlab.body._families import sample_specs
    from wormlab.body._generate import _work, consolidate, load_store, package_versions
    from wormlab.body._surrogate import split_data, train_surrogate
    from wormlab.body.cli import main

    physics, muscle = PhysicsConfig(), MuscleConfig()
    data = DataConfig(duration_s=1.0, seed=3, n_per_family={"sinusoid": 10, "nominal": 3})
    specs = sample_specs(data.n_per_family, data.seed)
    T = int(round(data.duration_s / physics.frame_dt_s)) + 1
    store = P.default_store()
    parts = store.with_name(store.name + ".parts")
    parts.mkdir(parents=True)
    pj, mj = json.dumps(dataclasses.asdict(physics)), json.dumps(dataclasses.asdict(muscle))
    for s in specs:  # the generator's own worker function, in process (no dask cluster)
        _work(s, T, pj, mj, str(parts), package_versions())
    consolidate(store, specs, parts, data, physics, muscle)
    d = load_store(store)
    cfg = SurrogateConfig(hidden_channels=8, n_modes=4, n_layers=1, epochs=epochs, batch_size=4,
                          val_fraction=0.2, train_families=("sinusoid", "nominal"),
                          errorhead_families=())
    train_surrogate(split_data(d, cfg), cfg, d["frame_dt_s"], d["body_length_um"],
                    checkpoint=P.default_cache_model(), progress=False)
    assert main(["ship", "--generate-command", generate_command,
                 "--train-command", train_command]) == 0
    return store


@pytest.fixture(scope="session")
def tiny_shipped_body_surrogate():
    """:func:`_tiny_shipped_body_surrogate` (call it inside the test's model/cache folders)."""
    return _tiny_shipped_body_surrogate


def _tiny_posture_run(run, n_modes: int = 4, epochs: int = 1, sae_steps: int = 40):
    """A tiny synthetic posture run folder (1 x 8 LSTM, smoke-size data) with its SAE:
    ``basis.json``, ``config.json``, ``lstm.*``, ``sae.*`` under ``run``."""
    import json

    from wormlab import posture as P
    from wormlab.posture._lstm import train_lstm
    from wormlab.posture._pipeline import prepare, save_basis

    cfg = P.PostureConfig(
        dataset="synthetic",
        shape=P.ShapeConfig(basis="pca", n_modes=n_modes, n_segments=30),
        lstm=P.LSTMConfig(layers=1, hidden=8, epochs=epochs, batch_size=64),
        cells=P.CellsConfig(n_shuffles=5),
    )
    data = prepare(cfg, smoke=True)
    save_basis(run / "basis.json", data.basis)
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    train_lstm(data.series, cfg.lstm, checkpoint=run / "lstm", max_steps_per_epoch=3)
    return P.sae_on_run(run, P.HiddenSAEConfig(n_steps=sae_steps, n_perm=20),
                        show_progress=False, smoke=True)


@pytest.fixture(scope="session")
def tiny_posture_run():
    """:func:`_tiny_posture_run`."""
    return _tiny_posture_run
