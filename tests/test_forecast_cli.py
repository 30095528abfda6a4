"""``tapas-opt forecast`` through click: the files it writes, the back-test, and place --profiles."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import hourly_history, server, vm, write_inventory
from tapas_opt.cli import main


def _office_hours(ts):
    ts = pd.DatetimeIndex(ts)
    return np.where((ts.day_of_week < 5) & (ts.hour >= 9) & (ts.hour < 17), 0.7, 0.2)


@pytest.fixture
def room(tmp_path):
    """One row, three servers; two running VMs with 4 weeks of telemetry (one with an
    irregular sample, a duplicate and a gap), one pending VM of a known customer."""
    tel = hourly_history(["run1", "run2"], [_office_hours, 0.5])
    extra = pd.DataFrame({"timestamp": [tel["timestamp"].iloc[-1] - pd.Timedelta(minutes=30),
                                        tel["timestamp"].iloc[-1]],
                          "vm_id": ["run1", "run1"], "load": [0.3, 0.3]})
    tel = pd.concat([tel, extra]).drop(tel.index[100:104])
    tel = tel.sort_values(["timestamp", "vm_id"], kind="stable")
    return write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 30}],
                           servers=[server("A1", "A"), server("A2", "A"), server("A3", "A")],
                           vms=[vm("run1", customer="c1", server_id="A1"), vm("run2", customer="c2", server_id="A2"),
                                vm("new1", customer="c1")],
                           telemetry=tel, config={"horizon_h": 48})


def test_forecast_writes_profiles_and_summary(room, tmp_path):
    """profiles.csv covers every VM and horizon slot; summary.json names each VM's method and
    reports the irregular, duplicate and missing telemetry."""
    out = tmp_path / "fc"
    res = CliRunner().invoke(main, ["forecast", str(room), "--out", str(out), "--statsmodels-vms", "0"])
    assert res.exit_code == 0, res.output
    prof = pd.read_csv(out / "profiles.csv")
    assert list(prof.columns) == ["vm_id", "timestamp", "p50", "p90", "p99"]
    assert prof.groupby("vm_id").size().to_dict() == {"run1": 48, "run2": 48, "new1": 48}
    assert ((prof["p50"] <= prof["p90"]) & (prof["p90"] <= prof["p99"])).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["per_vm"]["run2"]["method"] == "flat"
    assert summary["per_vm"]["new1"]["method"] == "borrowed-customer"
    assert summary["telemetry_quality"]["merged"] >= 1 and summary["telemetry_quality"]["off_grid"] == 1
    assert summary["telemetry_quality"]["longest_gap_slots"] >= 1
    assert any("gaps" in n for n in summary["telemetry_notes"])
    # the inventory's warnings, as validate and place give them
    assert any("duplicate_timestamps" in w for w in summary["warnings"]) and "warning: " in res.output


def test_place_accepts_the_forecast_profiles(room, tmp_path):
    """The forecast output is exactly what place --profiles reads (same horizon, all VMs)."""
    out = tmp_path / "fc"
    assert CliRunner().invoke(main, ["forecast", str(room), "--out", str(out), "--method", "template"]).exit_code == 0
    res = CliRunner().invoke(main, ["place", str(room), "--out", str(tmp_path / "plan"), "--profiles",
                                    str(out / "profiles.csv"), "--time-limit", "5", "--quiet"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "plan" / "summary.json").read_text())
    assert summary["profile_methods"] == {"supplied": 1}


def test_backtest_reports_every_method(room, tmp_path):
    out = tmp_path / "fc"
    res = CliRunner().invoke(main, ["forecast", str(room), "--out", str(out), "--backtest", "--origins", "2",
                                    "--statsmodels-vms", "1", "--json"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "backtest.csv", index_col="method")
    assert {"auto", "template", "recent-mix", "mstl-ets"} <= set(table.index)
    assert table.loc["template", "vs_template"] == pytest.approx(1.0)
    assert (table[["exceeded_p50", "exceeded_p90", "exceeded_p99"]].diff(axis=1).iloc[:, 1:] <= 1e-12).all().all()
    assert json.loads(res.output)["backtest"]["params"]["origins"] == 2
    assert table["n"].dtype.kind == "i" and table["vms"].dtype.kind == "i"  # counts, not 49392.0


def test_backtest_scores_the_vms_it_can_and_says_how_many(tmp_path):
    """One VM with eight weeks among VMs with four sized the history to four weeks before the
    first origin: only that VM was scored while the table said 5 VMs; and a statsmodels sample
    that drew only unscorable VMs crashed (KeyError 'pinball_mean', exit 3). The history now
    follows the median VM, the table counts the VMs scored, a warning names the rest, and the
    statsmodels sample is drawn among the scored VMs."""
    four = hourly_history(["a", "b", "c"], [_office_hours, 0.5, _office_hours])
    eight = hourly_history(["old"], [_office_hours], weeks=8)
    young = hourly_history(["new"], [0.4]).tail(10)
    tel = pd.concat([four, eight, young]).sort_values(["timestamp", "vm_id"], kind="stable")
    room = write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 60}],
                           servers=[server(f"A{i}", "A") for i in range(5)],
                           vms=[vm(v, customer=f"c{i}", server_id=f"A{i}") for i, v in enumerate(["a", "b", "c", "old", "new"])],
                           telemetry=tel, config={"horizon_h": 48})
    out = tmp_path / "fc"
    res = CliRunner().invoke(main, ["forecast", str(room), "--out", str(out), "--backtest", "--origins", "2",
                                    "--statsmodels-vms", "1", "--json"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "backtest.csv", index_col="method")
    assert table.loc["template", "vms"] == 4 and table.loc["mstl-ets", "vms"] == 1
    params = json.loads(res.output)["backtest"]["params"]
    assert (params["vms_scored"], params["vms"]) == (4, 5)
    assert any("4 of 5 VMs were scored" in w for w in params["warnings"])


def test_backtest_ratios_of_a_room_without_load_are_empty_not_infinite():
    from tapas_opt.forecast.run import _ratio

    assert _ratio(pd.Series([0.2, 0.1]), 0.1).tolist() == pytest.approx([2.0, 1.0])
    assert _ratio(pd.Series([0.2, 0.0]), 0.0).isna().all()


def test_too_short_telemetry_for_a_backtest_is_a_clear_error(room, tmp_path):
    res = CliRunner().invoke(main, ["forecast", str(room), "--out", str(tmp_path / "fc"), "--backtest",
                                    "--origins", "30"])
    assert res.exit_code == 2 and "fewer --origins" in res.output and "telemetry.csv: short_telemetry" in res.output
    assert not (tmp_path / "fc").exists()
    # telemetry shorter than a day plus the horizon: fewer origins cannot help, so it is not advised
    tel = pd.read_csv(room / "telemetry.csv", parse_dates=["timestamp"])
    short = tmp_path / "short"
    shutil.copytree(room, short)
    tel[tel["timestamp"] >= tel["timestamp"].max() - pd.Timedelta(hours=12)].to_csv(short / "telemetry.csv", index=False)
    res = CliRunner().invoke(main, ["forecast", str(short), "--out", str(tmp_path / "fs"), "--backtest", "--origins", "3"])
    assert res.exit_code == 2 and "fewer --origins" not in res.output and "add telemetry" in res.output, res.output


def test_a_backtest_of_telemetry_coarser_than_the_step_says_so(tmp_path):
    """Hourly telemetry on a 45-minute grid leaves every fourth slot empty, so no VM reaches the
    back-test's 90 % coverage: the message said 'fill the gaps in telemetry.csv' (there are
    none); it now names the sampling interval and the setting to change."""
    tel = hourly_history(["run1", "run2"], [_office_hours, 0.5])
    root = write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 30}],
                           servers=[server("A1", "A"), server("A2", "A")],
                           vms=[vm("run1", server_id="A1"), vm("run2", server_id="A2")],
                           telemetry=tel, config={"time_step_min": 45, "horizon_h": 24})
    res = CliRunner().invoke(main, ["forecast", str(root), "--out", str(tmp_path / "fc"), "--backtest",
                                    "--origins", "2"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "75 % of any VM's 45-minute slots hold a sample (telemetry about every 60 min)" in text
    assert "set time_step_min" in text and "fill the gaps" not in text


def test_a_method_that_cannot_fit_a_short_series_falls_back(tmp_path):
    """--method holt-winters on a VM with ten hours of history gives no model; that VM gets the
    automatic choice's default (recent-mix), said in the summary, and no profile is empty."""
    long = hourly_history(["run1"], [_office_hours])
    short = long.tail(10).assign(vm_id="run2")
    tel = pd.concat([long, short]).sort_values(["timestamp", "vm_id"], kind="stable")
    root = write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 30}],
                           servers=[server("A1", "A"), server("A2", "A")],
                           vms=[vm("run1", customer="c1", server_id="A1"), vm("run2", customer="c2", server_id="A2")],
                           telemetry=tel, config={"horizon_h": 48})
    res = CliRunner().invoke(main, ["forecast", str(root), "--out", str(tmp_path / "f"), "--method", "holt-winters",
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    prof = pd.read_csv(tmp_path / "f" / "profiles.csv")
    assert not prof[["p50", "p90", "p99"]].isna().any().any() and len(prof) == 2 * 48
    per_vm = json.loads((tmp_path / "f" / "summary.json").read_text())["per_vm"]
    assert per_vm["run2"]["method"] == "recent-mix" and per_vm["run1"]["method"] == "holt-winters"


def test_a_degenerate_statsmodels_fit_falls_back(tmp_path):
    """--method stl-ar on a constant series fitted a singular AR that forecast -2e9, clipped to
    zero load for every slot and reported as stl-ar; on the office-hours series it is sane."""
    flat = hourly_history(["run2"], [0.5])
    tel = pd.concat([hourly_history(["run1"], [_noisy_office]), flat]).sort_values(["timestamp", "vm_id"], kind="stable")
    root = write_inventory(tmp_path / "inv", aisles=[{"aisle_id": "X", "airflow_limit_cfm": 1e5}],
                           rows=[{"row_id": "A", "aisle_id": "X", "power_limit_kw": 30}],
                           servers=[server("A1", "A"), server("A2", "A")],
                           vms=[vm("run1", customer="c1", server_id="A1"), vm("run2", customer="c2", server_id="A2")],
                           telemetry=tel, config={"horizon_h": 48})
    res = CliRunner().invoke(main, ["forecast", str(root), "--out", str(tmp_path / "f"), "--method", "stl-ar", "--quiet"])
    assert res.exit_code == 0, res.output
    prof = pd.read_csv(tmp_path / "f" / "profiles.csv").set_index("vm_id")
    assert prof.loc["run2", "p50"].to_numpy() == pytest.approx(0.5, abs=0.01)
    per_vm = json.loads((tmp_path / "f" / "summary.json").read_text())["per_vm"]
    assert per_vm["run2"]["method"] == "recent-mix" and per_vm["run1"]["method"] == "stl-ar"


def _noisy_office(ts):
    rng = np.random.default_rng(0)
    return np.clip(_office_hours(ts) + rng.normal(0, 0.05, len(ts)), 0, 1)


def test_a_method_that_cannot_forecast_a_vm_is_scored_on_the_fallback_it_would_use():
    """A statsmodels fit that failed at one origin gave NaN forecasts, and the back-test scored
    the NaN: the method's MAE and pinball loss came out NaN (null in summary.json) and, a NaN band
    never being exceeded, its exceedance too good. Now those VM-origins are scored on what
    forecast and place would use instead, the automatic choice's default, and counted."""
    from tapas_opt.forecast.backtest import rolling_origin_backtest
    from tapas_opt.forecast.empirical import CHEAP_METHODS
    from tapas_opt.forecast.select import AutoConfig
    from tapas_opt.forecast.series import matrix_from_values

    class FailsOnFirstVm(type(CHEAP_METHODS["template"])):
        name = "fails-on-first"

        def forecast(self, values, index, step_min, horizon):
            out = super().forecast(values, index, step_min, horizon)
            out[0] = np.nan
            return out

    rng = np.random.default_rng(0)
    index = pd.date_range("2026-01-05", periods=6 * 168, freq="60min")
    values = np.clip(0.5 + 0.3 * np.sin(2 * np.pi * index.hour.to_numpy() / 24)[None, :]
                     + 0.1 * rng.standard_normal((3, len(index))), 0, 1)
    m = matrix_from_values(values, index, 60, ["a", "b", "c"])
    fallback = CHEAP_METHODS[AutoConfig.default]
    res = rolling_origin_backtest(m, {"fails": FailsOnFirstVm(), "fallback": fallback,
                                      "template": CHEAP_METHODS["template"]}, 4 * 168, 24, 24)
    table = res.overall
    assert np.isfinite(table.loc["fails", ["mae", "pinball_mean", "exceeded_p99"]].astype(float)).all()
    assert table.loc["fails", "fallback_share"] == pytest.approx(1 / 3)
    assert table.loc["template", "fallback_share"] == 0
    per = res.per_series
    assert per.loc[("fails", "a"), "mae"] == pytest.approx(per.loc[("fallback", "a"), "mae"])
    assert per.loc[("fails", "b"), "mae"] == pytest.approx(per.loc[("template", "b"), "mae"])
