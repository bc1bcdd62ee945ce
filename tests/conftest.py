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
