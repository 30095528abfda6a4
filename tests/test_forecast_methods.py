"""The vectorised forecasting methods: exact cases with known answers, and the paper's template."""

import numpy as np
import pandas as pd
import pytest

from conftest import hourly_history
from tapas_opt.forecast.empirical import (LEVEL_GRID, ProfileMixMethod, RecentMixMethod, SeasonalNaiveMethod,
                                          TemplateMethod, mixture_quantiles, quantile_table, seasonal_profile)
from tapas_opt.forecast.select import MatrixForecaster
from tapas_opt.forecast.series import build_matrix, matrix_from_values
from tapas_opt.forecast.template import TemplateForecaster

HORIZON = pd.date_range("2026-06-01", periods=168, freq="60min")  # a Monday


def _office_hours(ts):
    """0.8 on weekdays 9-17 h, 0.2 otherwise."""
    ts = pd.DatetimeIndex(ts)
    return np.where((ts.day_of_week < 5) & (ts.hour >= 9) & (ts.hour < 17), 0.8, 0.2)


def _noisy(seed, scale=0.03):
    rng = np.random.default_rng(seed)
    return lambda ts: np.clip(_office_hours(ts) + rng.normal(0, scale, len(ts)), 0, 1)


def test_quantile_table_matches_numpy_within_a_bin():
    """Histogram quantiles agree with numpy's to within one bin plus one sample gap."""
    rng = np.random.default_rng(0)
    x = rng.random((20, 3000))
    x[rng.random(x.shape) < 0.2] = np.nan
    table = quantile_table(x)
    levels = np.linspace(0, 1, LEVEL_GRID + 1)
    ref = np.nanquantile(x, levels, axis=1).T
    assert np.abs(table - ref)[:, 10:-10].max() < 0.005
    np.testing.assert_allclose(table[:, [0, -1]], ref[:, [0, -1]])


def test_mixture_quantiles_closed_form():
    """F uniform on [0, 1], point mass at 0.9 with weight 0.5: the median is 0.9, p99 0.98."""
    table = np.linspace(0, 1, LEVEL_GRID + 1)[None, :]
    out = mixture_quantiles(table, np.array([0.9]), np.array([0.5, 0.0]))
    # F(x) = 0.5 x + 0.5 [x >= 0.9]: 0.5 reached inside the mass; 0.99 at x = 0.98.
    assert out[0, 0, 0] == pytest.approx(0.9)
    assert out[0, 0, 2] == pytest.approx(0.98)
    # No mass: plain quantiles of F.
    np.testing.assert_allclose(out[0, 1], [0.5, 0.9, 0.99])


def test_matrix_template_equals_the_template_forecaster():
    """The vectorised template is the paper's method, identical to TemplateForecaster."""
    hist = pd.concat([hourly_history(["a"], [_noisy(1, 0.1)]),
                      hourly_history(["b"], [_noisy(2, 0.2)], weeks=2),
                      hourly_history(["c"], [lambda ts: np.linspace(0.1, 0.6, len(ts))], weeks=0.5)])
    hist = hist.drop(hist.index[::7])  # gaps
    expected = TemplateForecaster(60).fit(hist).predict(HORIZON)
    got = MatrixForecaster(TemplateMethod(), 60).fit(hist).predict(HORIZON)
    pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(), check_exact=False, atol=1e-12)


def test_profile_reproduces_a_clean_weekly_pattern():
    """Four identical weeks: the profile methods forecast the pattern itself, bands closed."""
    hist = hourly_history(["a"], [_office_hours])
    for method in (ProfileMixMethod(), ProfileMixMethod(persistence_h=0, label="profile")):
        f = MatrixForecaster(method, 60).fit(hist).predict(HORIZON)
        for q in ("p50", "p90", "p99"):
            np.testing.assert_allclose(f[q].to_numpy(), _office_hours(HORIZON), atol=0.01)


def test_short_history_profile_keeps_weekends_apart():
    """Five days Wed-Sun: a Monday is forecast from weekdays, a Saturday from the weekend."""
    ts = pd.date_range("2026-05-27", periods=5 * 24, freq="60min")  # Wed 00:00 to Sun 23:00
    x = _office_hours(ts)[None, :].astype(float)
    future = pd.date_range("2026-06-01", periods=24 * 6, freq="60min")  # Mon..Sat
    _, _, prof = seasonal_profile(x, ts, 60, future)
    np.testing.assert_allclose(prof[0], _office_hours(future))


def _daily_wave(ts):
    """0.3 to 0.7 over the day, every day (no two hours alike)."""
    ts = pd.DatetimeIndex(ts)
    return 0.5 + 0.2 * np.sin(2 * np.pi * (ts.hour + ts.minute / 60) / 24)


@pytest.mark.parametrize("hole", ["03:00 never seen", "odd hours never seen", "no weekend seen"])
@pytest.mark.parametrize("weeks", [4, 1])
def test_profiles_fill_slots_the_history_never_saw(hole, weeks):
    """A slot never observed (telemetry every two hours at a 60-minute step, an hour with no
    sample, weekdays only) was a NaN profile value that became 0: p50 0.0 and p99 ~0.1 where
    the load runs at 0.3-0.7, chosen by the auto forecaster because its back-test never scores
    a slot without telemetry. It is filled from the same slot on other days, else from the
    slots beside it."""
    hist = hourly_history(["a"], [_daily_wave], weeks=weeks)
    ts = pd.DatetimeIndex(hist["timestamp"])
    drop = {"03:00 never seen": ts.hour == 3, "odd hours never seen": ts.hour % 2 == 1,
            "no weekend seen": ts.day_of_week >= 5}[hole]
    hist = hist[~drop]
    for method in (ProfileMixMethod(), ProfileMixMethod(persistence_h=0, label="profile"),
                   ProfileMixMethod(persistence_h=0, half_life_h=48.0, label="profile-recent")):
        f = MatrixForecaster(method, 60).fit(hist).predict(HORIZON)
        np.testing.assert_allclose(f["p50"].to_numpy(), _daily_wave(HORIZON), atol=0.03, err_msg=method.name)


def test_recent_mix_persists_a_running_job_then_reverts():
    """A VM idle 0.1 for weeks, busy 0.9 for the last 6 hours: near-term P50 stays at 0.9,
    a week out it is back near the idle level; P99 is above the highest load seen."""
    ts = pd.date_range(end="2026-05-31 23:00", periods=4 * 168, freq="60min")
    x = np.full((1, len(ts)), 0.1)
    x[0, -6:] = 0.9
    fc = RecentMixMethod().forecast(x, ts, 60, HORIZON)
    assert fc[0, 0, 0] == pytest.approx(0.9)
    assert fc[0, -1, 0] == pytest.approx(0.1, abs=0.01)
    assert (fc[0, :, 2] >= 0.9 + 0.25 * 0.1 - 1e-9).all()
    assert np.all(np.diff(fc[0], axis=1) >= 0)  # p50 <= p90 <= p99


def test_seasonal_naive_repeats_last_week():
    hist = hourly_history(["a"], [_office_hours])
    m = build_matrix(hist, 60)
    fc = SeasonalNaiveMethod().forecast(m.values, m.index, 60, HORIZON)
    np.testing.assert_allclose(fc[0, :, 0], _office_hours(HORIZON))


@pytest.mark.parametrize("step_min", [5, 15, 60])
def test_methods_give_ordered_bands_in_range_at_any_step(step_min):
    """Every method, any step: bands in 0..1 and ordered, one value per horizon slot."""
    rng = np.random.default_rng(step_min)
    n_t = 3 * 7 * 24 * 60 // step_min
    index = pd.date_range(end="2026-05-31 23:59", periods=n_t, freq=f"{step_min}min")
    x = np.clip(rng.random((4, n_t)) * 1.2 - 0.1, 0, 1)
    x[1, : n_t // 2] = np.nan
    horizon = pd.date_range("2026-06-01", periods=2 * 24 * 60 // step_min, freq=f"{step_min}min")
    for method in (TemplateMethod(), SeasonalNaiveMethod(), RecentMixMethod(), ProfileMixMethod()):
        fc = method.forecast(x, index, step_min, horizon)
        assert fc.shape == (4, len(horizon), 3)
        assert np.isfinite(fc).all() and (fc >= 0).all() and (fc <= 1).all()
        assert (np.diff(fc, axis=2) >= -1e-12).all()


def test_matrix_from_values_round_trip():
    index = pd.date_range("2026-06-01", periods=3, freq="60min")
    m = matrix_from_values(np.array([[0.1, np.nan, 0.3]]), index, 60, ["a"])
    assert m.quality.loc["a", "missing_slots"] == 1 and list(m.vm_ids) == ["a"]
