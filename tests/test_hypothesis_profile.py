"""Local runs and CI try the same hypothesis inputs (tests/conftest.py loads the "fixed"
profile whatever the environment)."""

import pytest

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")


def test_profile_is_fixed_without_ci_too():
    cur = hypothesis.settings.default
    assert cur.derandomize and cur.database is None and cur.deadline is None


def test_two_runs_try_the_same_examples():
    seen = []

    @hypothesis.settings(max_examples=25)
    @hypothesis.given(st.integers(), st.text(max_size=5))
    def probe(i, s):
        seen.append((i, s))

    probe()
    first = list(seen)
    seen.clear()
    probe()
    assert len(first) >= 25 and seen == first
