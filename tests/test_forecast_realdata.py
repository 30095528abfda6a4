"""Claims about real load (../shared/data): the issue's targets, measured as BENCHMARKS.md does.

The Cornell target is asserted per server; the Azure day-ahead target (80 % of service-hours
within 10 %) is NOT met (72.9 %, see BENCHMARKS.md), so its test asserts what is achieved and
that it beats the naive "same hour yesterday" baseline.
"""

import numpy as np
import pytest

from tapas_opt.calibrate.gpu_temp import evaluate_servers
from tapas_opt.forecast.empirical import CHEAP_METHODS
from tapas_opt.forecast.realdata import (alibaba_backtest, azure_day_ahead, cornell_backtest, default_methods,
                                         within)

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def cornell(request):
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return cornell_backtest(SHARED_DATA, {"auto": default_methods()["auto"], "template": CHEAP_METHODS["template"]})


def test_cornell_default_beats_the_paper_template_by_30pct_on_every_server(cornell):
    """Week ahead from four weeks, weekly origins, all six servers: the default forecaster's
    mean pinball loss over P50/P90/P99 is at least 30 % below the template's, per server."""
    ratio = cornell.relative_to("template")["auto"]
    assert len(ratio) == 6 and cornell.n_origins > 100  # 134 weekly origins, 526 server-weeks
    assert (ratio <= 0.70).all(), ratio.round(3).to_dict()


def test_cornell_p99_band_is_exceeded_at_most_2pct_of_hours(cornell):
    exceeded = cornell.per_series["exceeded_p99"].unstack("method")
    assert (exceeded["auto"] <= 0.02).all(), exceeded["auto"].round(4).to_dict()
    assert (exceeded["template"] > 0.15).all()  # the reference: the template's P99 is far too low here


def test_azure_day_ahead_beats_same_hour_yesterday(shared_data):
    """Last two days of each service from all days before: share of service-hours within 10 %
    (target 80 %, not met: see BENCHMARKS.md), and better than same-hour-yesterday."""
    table = azure_day_ahead(shared_data)
    assert len(table) == 96
    ours = within(table["p50"], table["actual"]).mean()
    naive = within(table["yesterday"], table["actual"]).mean()
    assert ours >= 0.70 and ours > naive + 0.1
    # Weekends are not averaged into weekdays: Saturday's forecast is far from the weekday level.
    sat = table[(table["service"] == "conv") & (table["day"] == "Saturday")]
    fri = table[(table["service"] == "conv") & (table["day"] == "Friday")]
    assert sat["p50"].mean() < 0.8 * fri["actual"].mean()


def test_alibaba_one_hour_ahead_beats_the_peak_assumption(shared_data):
    """Containers with 12 h of history, an hour ahead: far better than assuming the peak."""
    res = alibaba_backtest(shared_data, {"auto": default_methods()["auto"], "template": CHEAP_METHODS["template"]})
    rel = res.relative_to("template")["auto"]
    assert np.nanmedian(rel) < 0.3
    assert res.overall.loc["auto", "exceeded_p99"] <= 0.02


def test_gpu_temperature_model_on_cornell(shared_data):
    """Trained on the first 80 % of each server, tested on the rest: with the inlet proxy
    (the GPU's own telemetry up to an hour earlier) the median MAE is at most 1.5 C; the plain
    quadratic in average power, the issue's reference, is worse on every server."""
    table = evaluate_servers(shared_data)
    assert np.median(table["mae_proxy_1h_c"].astype(float)) <= 1.5
    assert (table["mae_proxy_1h_c"].astype(float) < table["mae_quadratic_c"].astype(float)).all()
    assert (table["scored_proxy_1h"].astype(float) > 0.95).all()
