"""The intestine on the loop's clock."""

import numpy as np
import pytest

from wormlab.circuit._intestine import simulate_intestine
from wormlab.worm._organs import IntestineClock


def test_intestine_clock_matches_one_long_simulation_and_checks_the_order():
    clock = IntestineClock(26, frame_dt_s=0.04)
    for f in range(26):
        clock.step(f)
    whole = simulate_intestine(1.0, dt_ms=40.0).detach().numpy()  # (26, 20) uM, same RK4 step
    np.testing.assert_allclose(clock.ca_uM, whole, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="expected 26"):
        clock.step(27)
    with pytest.raises(ValueError, match="n_frames >= 1"):
        IntestineClock(0)
