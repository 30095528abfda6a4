"""The physics module against hand computations from the published facts (TAPAS.md s1-2)."""

import numpy as np
import pytest

from tapas_opt import physics
from tapas_opt.config import InletModel


def test_gpu_temperature_matches_the_papers_test_gpu():
    """T = inlet + 2 C + 0.053 C/W * P: 25 C inlet at 300 W gives 42.9 C."""
    assert physics.gpu_temp_c(25.0, 300.0, 2.0, 0.053) == pytest.approx(42.9)


def test_inlet_has_a_floor_a_slope_and_a_cap():
    """Floor 19 C below 15 C outside, +0.95 C/C above, capped at 30 C (no room load)."""
    m = InletModel()
    out = physics.inlet_temp_c(np.array([0.0, 15.0, 20.0, 40.0]), 0.0, m)
    np.testing.assert_allclose(out, [19.0, 19.0, 19.0 + 0.95 * 5, 30.0])


def test_room_load_adds_up_to_two_degrees_when_hot():
    """Full room load adds load_gain_c (2 C) at 35 C outside, nothing at 15 C or below."""
    m = InletModel()
    hot = physics.inlet_temp_c(35.0, 1.0, m) - physics.inlet_temp_c(35.0, 0.0, m)
    cold = physics.inlet_temp_c(10.0, 1.0, m) - physics.inlet_temp_c(10.0, 0.0, m)
    assert hot == pytest.approx(2.0) and cold == pytest.approx(0.0)


def test_room_load_is_at_most_a_fully_busy_room():
    """Twice the room's GPUs at full load (a queue larger than the room, every VM counted) is a
    fully busy room, not 2: the inlet rise stays within load_gain_c."""
    assert physics.room_load(np.ones((2, 3)), [8, 8], 8).tolist() == [1.0, 1.0, 1.0]
    assert physics.room_load(np.full((1, 2), 0.5), [8], 16).tolist() == [0.25, 0.25]


def test_vm_power_is_its_gpu_share_of_the_dynamic_range():
    """A 4-GPU VM at full load on an 8-GPU server (2 -> 6.5 kW) adds half of 4.5 kW."""
    assert physics.vm_power_kw(1.0, 4, 8, 2.0, 6.5, (0.0, 1.0)) == pytest.approx(2.25)


def test_colocated_vms_add_up_to_the_whole_server():
    """Two 4-GPU VMs at loads a and b draw what one 8-GPU VM at (a + b) / 2 draws (linear g)."""
    a, b = 0.3, 0.9
    two = physics.vm_power_kw(a, 4, 8, 2.0, 6.5, (0, 1)) + physics.vm_power_kw(b, 4, 8, 2.0, 6.5, (0, 1))
    one = physics.vm_power_kw((a + b) / 2, 8, 8, 2.0, 6.5, (0, 1))
    assert two == pytest.approx(one)


def test_airflow_is_linear_in_load_between_idle_and_max():
    """840 CFM at full load, idle 496 CFM: a full 8-GPU VM adds 344 CFM, half load 172 CFM."""
    np.testing.assert_allclose(physics.vm_airflow_cfm([1.0, 0.5], 8, 8, 496, 840), [344, 172])


def test_power_fraction_is_clipped_to_the_range():
    """A fitted polynomial cannot give negative power or more than the maximum."""
    np.testing.assert_allclose(physics.power_fraction([0.0, 1.0], (-0.1, 1.5)), [0.0, 1.0])


def test_no_recirculation_while_the_ahu_supplies_enough():
    assert physics.recirculation_rise_c(1000, 1000, 50) == 0.0


def test_recirculation_mixes_in_exhaust_air():
    """With half the demanded air supplied, the inlet rises by half the exhaust rise
    dT = P / (rho c_p Q): 6.5 kW through 840 CFM heats air by about 13.6 C."""
    dt = physics.exhaust_rise_c(6.5, 840)
    assert dt == pytest.approx(6500 / (1.2 * 1005 * 840 * 0.000471947))
    assert 13 < dt < 14.5
    assert physics.recirculation_rise_c(840, 420, 6.5) == pytest.approx(dt / 2)
