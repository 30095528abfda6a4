"""The automatic per-VM choice: seasonal load gets a seasonal method, bursty load keeps the
default, and short, flat, gappy or new VMs get their cheap fallbacks."""

import numpy as np
import pandas as pd
import pytest

from conftest import hourly_history, server, vm, write_inventory
from tapas_opt.forecast.profiles import build_profiles
from tapas_opt.forecast.select import AutoForecaster, seasonal_strength
from tapas_opt.forecast.series import build_matrix
from tapas_opt.inventory.load import load_inventory

HORIZON = pd.date_range("2026-06-01", periods=168, freq="60min")


def _office_hours(ts):
    ts = pd.DatetimeIndex(ts)
    return np.where((ts.day_of_week < 5) & (ts.hour >= 9) & (ts.hour < 17), 0.8, 0.2)


def _seasonal(seed):
    rng = np.random.default_rng(seed)
    return lambda ts: np.clip(_office_hours(ts) + rng.normal(0, 0.03, len(ts)), 0, 1)


def _bursty(seed):
    """On/off jobs of random length (a two-state Markov chain), no calendar pattern."""
    rng = np.random.default_rng(seed)

    def load(ts):
        out, busy = np.empty(len(ts)), False
        for i in range(len(ts)):
            busy = (rng.random() < 0.9) if busy else (rng.random() < 0.03)
            out[i] = 0.85 if busy else 0.1
        return out + rng.normal(0, 0.01, len(ts))
    return load


@pytest.fixture(scope="module")
def mixed_history():
    vms = [f"s{i}" for i in range(3)] + [f"b{i}" for i in range(3)]
    loads = [_seasonal(i) for i in range(3)] + [_bursty(10 + i) for i in range(3)]
    hist = hourly_history(vms, loads)
    short = hourly_history(["short"], [_seasonal(7)], weeks=0.1)
    flat = hourly_history(["flat"], [0.42])
    gappy = hourly_history(["gappy"], [_seasonal(8)])
    gappy = gappy[np.random.default_rng(0).random(len(gappy)) < 0.3]
    return pd.concat([hist, short, flat, gappy], ignore_index=True)


def test_seasonal_strength_separates_calendar_load_from_jobs(mixed_history):
    m = build_matrix(mixed_history, 60)
    strength = pd.Series(seasonal_strength(m.values, m.index, 60), index=m.vm_ids)
    assert (strength[["s0", "s1", "s2"]] > 0.8).all()
    assert (strength[["b0", "b1", "b2"]] < 0.3).all()


def test_each_vm_gets_a_fitting_method(mixed_history):
    """Seasonal VMs leave the default for a seasonal method; bursty ones keep recent-mix;
    fallbacks for short, flat and gappy telemetry."""
    f = AutoForecaster(60, max_statsmodels_vms=0).fit(mixed_history)
    methods = f.methods_
    seasonal = {"profile-mix", "profile", "profile-recent", "seasonal-naive", "template"}
    assert set(methods[["s0", "s1", "s2"]]) <= seasonal
    assert set(methods[["b0", "b1", "b2"]]) == {"recent-mix"}
    assert methods["short"] == "short-history-peak"
    assert methods["flat"] == "flat"
    assert methods["gappy"] == "recent-mix"
    fc = f.predict(HORIZON)
    np.testing.assert_allclose(fc.loc["flat"].to_numpy(), 0.42)
    p50 = fc.loc["s0", "p50"].to_numpy()
    assert np.abs(p50 - _office_hours(HORIZON)).mean() < 0.05
    assert f.summary()["methods"]["recent-mix"] >= 4


def test_seasonal_choice_beats_the_default_out_of_sample():
    """On office-hours load, the chosen method's pinball loss on the next week is lower than
    recent-mix's: the choice pays out of sample, not only in the back-test."""
    from tapas_opt.forecast.empirical import RecentMixMethod
    from tapas_opt.forecast.metrics import score_rows

    full = hourly_history(["s"], [_seasonal(3)], weeks=5, end="2026-06-08 00:00")
    hist, fut = full[full["timestamp"] < "2026-06-01"], full[full["timestamp"] >= "2026-06-01"]
    actual = fut["load"].to_numpy()[None, :]
    auto = AutoForecaster(60, max_statsmodels_vms=0).fit(hist)
    chosen = score_rows(actual, auto.predict_array(HORIZON))[0]
    m = build_matrix(hist, 60)
    default = score_rows(actual, RecentMixMethod().forecast(m.values, m.index, 60, HORIZON))[0]
    assert auto.methods_["s"] != "recent-mix" and chosen < 0.7 * default


def test_statsmodels_candidates_are_back_tested_where_allowed():
    """With a budget of one VM, exactly one seasonal VM gets statsmodels scores (four weeks of
    history: three to train on before the held-out week, enough for the weekly season)."""
    hist = hourly_history(["s0", "s1"], [_seasonal(0), _seasonal(1)], weeks=4)
    f = AutoForecaster(60, max_statsmodels_vms=1).fit(hist)
    sm = f.scores_[["mstl-ets", "holt-winters", "stl-ar"]]
    assert sm.notna().all(axis=1).sum() == 1
    assert np.isfinite(sm.dropna().to_numpy()).all()
    out = f.predict_array(HORIZON)
    assert np.isfinite(out).all() and (np.diff(out, axis=2) >= -1e-12).all()


def test_statsmodels_are_candidates_only_where_the_training_part_has_the_weekly_season():
    """Three weeks of history hold out one and train on two, where the models get only the daily
    season (and refit on three with the weekly one: the model chosen would not be the model
    back-tested); they are no candidates there."""
    hist = hourly_history(["s0"], [_seasonal(0)], weeks=3)
    f = AutoForecaster(60, max_statsmodels_vms=1).fit(hist)
    assert f.scores_[["mstl-ets", "holt-winters", "stl-ar"]].isna().all().all()
    assert f.scores_["recent-mix"].notna().all()


def test_a_weekly_season_needs_three_weeks():
    from tapas_opt.forecast.statsmodels_models import DAY_H, WEEK_H, history_seasons, season_h

    assert [season_h(h) for h in (48, 2 * WEEK_H, 3 * WEEK_H - 1, 3 * WEEK_H)] == [DAY_H, DAY_H, DAY_H, WEEK_H]
    index = pd.date_range("2026-01-05", periods=4 * WEEK_H, freq="60min")
    values = np.full((2, len(index)), 0.5)
    values[1, :WEEK_H + 1] = np.nan  # measured from just under three weeks before the end
    assert history_seasons(values, index, 60).tolist() == [WEEK_H, DAY_H]


@pytest.mark.parametrize("model", ["stl-ar", "mstl-ets", "holt-winters"])
def test_statsmodels_bands_on_two_weeks_of_noisy_load_are_not_degenerate(model):
    """On exactly two weeks, stl-ar took the weekly season: STL's smoother, with two values per
    hour of the week, absorbed the noise as season, and P50 = P90 = P99 at every slot. A weekly
    season now needs three weeks; the bands are as wide as the noise."""
    from tapas_opt.forecast.statsmodels_models import StatsmodelsMethod

    rng = np.random.default_rng(1)
    index = pd.date_range("2026-05-04", periods=2 * 168, freq="60min")
    values = np.clip(0.5 + 0.2 * np.sin(2 * np.pi * index.hour.to_numpy() / 24)
                     + 0.08 * rng.standard_normal(len(index)), 0, 1)[None, :]
    out = StatsmodelsMethod(model=model).forecast(values, index, 60, _day_after(index))
    width = out[0, :, 2] - out[0, :, 0]
    assert np.isfinite(out).all() and np.median(width) > 0.05  # noise sd 0.08: P99 - P50 about 0.19


def _day_after(index):
    return pd.date_range(index[-1] + pd.Timedelta(hours=1), periods=24, freq="60min")


def test_build_profiles_reports_the_method_of_every_vm(tmp_path):
    """place's profiles come from the automatic forecaster; borrowed VMs keep their labels."""
    tel = hourly_history(["run1", "run2"], [_seasonal(0), _bursty(1)])
    root = write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 50}],
                           servers=[server("A1", "A"), server("A2", "A")],
                           vms=[vm("run1", customer="c1", server_id="A1"), vm("run2", customer="c2", server_id="A2"),
                                vm("new1", customer="c1")],
                           telemetry=tel)
    prof = build_profiles(load_inventory(root))
    assert prof.method["run2"] == "recent-mix"
    assert prof.method["run1"] in {"profile-mix", "profile", "profile-recent", "seasonal-naive", "template",
                                   "mstl-ets", "holt-winters", "stl-ar"}
    assert prof.method["new1"] == "borrowed-customer"


@pytest.mark.parametrize("step", [32, 40, 45])
def test_steps_that_divide_a_day_but_not_an_hour_are_forecast(step):
    """Methods are compared at a multiple of the telemetry step that divides a day (45 -> 90
    minutes): a 45-minute room used to crash ("60 is not a multiple of 45"); its seasonal VM
    still gets a seasonal method."""
    from tapas_opt.forecast.select import selection_step

    assert selection_step(step, 60) % step == 0 and 1440 % selection_step(step, 60) == 0
    ts = pd.date_range(end="2026-05-31 23:59", periods=4 * 10080 // step, freq=f"{step}min")
    hist = pd.DataFrame({"timestamp": ts, "vm_id": "s", "load": _seasonal(0)(ts)})
    f = AutoForecaster(step, max_statsmodels_vms=0).fit(hist)
    horizon = pd.date_range("2026-06-01", periods=1440 // step, freq=f"{step}min")
    assert f.methods_["s"] != "recent-mix" and np.isfinite(f.predict_array(horizon)).all()


def test_a_chosen_model_whose_refit_fails_gives_way_to_the_default():
    """The refit on the whole history can fail where the back-test's fit did not: that VM gets
    the default method's forecast, and methods_ says so (no NaN profile reaches place)."""
    from tapas_opt.forecast.empirical import CHEAP_METHODS, RecentMixMethod

    class FailsWhenRefitted(RecentMixMethod):
        def forecast(self, values, index, step_min, horizon):
            return np.full((values.shape[0], len(horizon), 3), np.nan)

    hist = hourly_history(["s0", "s1"], [_seasonal(0), _seasonal(1)], weeks=4)
    f = AutoForecaster(60, max_statsmodels_vms=0, methods={"profile": FailsWhenRefitted()}).fit(hist)
    f.chosen_ = np.array(["profile", "recent-mix"], dtype=object)
    out = f.predict_array(HORIZON)
    m = build_matrix(hist, 60)
    default = CHEAP_METHODS["recent-mix"].forecast(m.values, m.index, 60, HORIZON)
    assert np.allclose(out, default) and list(f.methods_) == ["recent-mix", "recent-mix"]
