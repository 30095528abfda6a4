"""``tapas-opt fit``: a room whose telemetry was made from known physics gets that physics back,
physics.yaml is what the loader then uses, and bad calibration values are reported by place."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from tapas_opt.cli import main
from tapas_opt.config import InletModel
from tapas_opt.generate import RoomSpec, write_room
from tapas_opt.inventory.load import check_inventory, load_inventory
from tapas_opt.physics import inlet_temp_c

TRUE_INLET = InletModel(floor_c=18.5, knee_outside_c=14.0, slope_c_per_c=0.9, cap_c=29.0, load_gain_c=1.5)
TRUE = {"gpu_idle_w": 60.0, "gpu_max_w": 400.0, "poly": (0.0, 0.8, 0.2), "intercept_c": 3.0, "c_per_w": 0.06,
        "idle_kw": 2.1, "max_kw": 6.3, "idle_cfm": 500.0, "max_cfm": 840.0}


@pytest.fixture(scope="module")
def calibrated_room(tmp_path_factory):
    """A generated 24-server room with calibration columns computed from TRUE physics + noise.

    Outside temperature sweeps 4-36 C (a slow cycle plus a daily one), so the inlet's floor,
    knee, slope and cap are all visible.
    """
    root = write_room(RoomSpec(servers=24, pending_vms=2, seed=3, occupancy=0.7),
                      tmp_path_factory.mktemp("fit") / "room")
    rng = np.random.default_rng(0)
    tel = pd.read_csv(root / "telemetry.csv", parse_dates=["timestamp"])
    vms = pd.read_csv(root / "vms.csv")
    servers = pd.read_csv(root / "servers.csv")
    ts = pd.date_range(tel["timestamp"].min(), tel["timestamp"].max() + pd.Timedelta(days=8), freq="60min")
    hours = np.arange(len(ts))
    outside = 20 + 14 * np.sin(2 * np.pi * hours / (24 * 9)) + 2 * np.sin(2 * np.pi * hours / 24)
    pd.DataFrame({"timestamp": ts, "temp_c": outside.round(2)}).to_csv(root / "outside.csv", index=False)
    out_at = pd.Series(outside, index=ts)
    tel = tel.merge(vms[["vm_id", "server_id", "gpus"]], on="vm_id")
    tel = tel.merge(servers[["server_id", "gpus", "inlet_offset_c"]].rename(columns={"gpus": "sgpus"}), on="server_id")
    u = tel["load"].to_numpy()
    g = TRUE["poly"][1] * u + TRUE["poly"][2] * u ** 2
    tel["gpu_power_w"] = TRUE["gpu_idle_w"] + (TRUE["gpu_max_w"] - TRUE["gpu_idle_w"]) * g + rng.normal(0, 4, len(tel))
    room = (tel["gpus"] * tel["load"]).groupby(tel["timestamp"]).sum() / servers["gpus"].sum()
    inlet = inlet_temp_c(tel["timestamp"].map(out_at).to_numpy(), tel["timestamp"].map(room).to_numpy(),
                         TRUE_INLET, tel["inlet_offset_c"].to_numpy())
    srv_key = [tel["server_id"], tel["timestamp"]]
    tel["inlet_temp_c"] = pd.Series(inlet).groupby(srv_key).transform("mean").to_numpy() + \
        rng.normal(0, 0.15, len(tel))
    tel["gpu_temp_c"] = tel["inlet_temp_c"] + TRUE["intercept_c"] + TRUE["c_per_w"] * tel["gpu_power_w"] + \
        rng.normal(0, 0.4, len(tel))
    share = tel["gpus"] / tel["sgpus"]
    xp = (share * g).groupby(srv_key).transform("sum")
    xl = (share * tel["load"]).groupby(srv_key).transform("sum")
    tel["server_power_kw"] = TRUE["idle_kw"] + (TRUE["max_kw"] - TRUE["idle_kw"]) * xp + rng.normal(0, 0.03, len(tel))
    tel["airflow_cfm"] = TRUE["idle_cfm"] + (TRUE["max_cfm"] - TRUE["idle_cfm"]) * xl + rng.normal(0, 3, len(tel))
    cols = ["timestamp", "vm_id", "load", "gpu_power_w", "gpu_temp_c", "inlet_temp_c", "server_power_kw",
            "airflow_cfm"]
    tel = tel.sort_values(["timestamp", "vm_id"])[cols].round({c: 4 for c in cols[2:]})
    tel.to_csv(root / "telemetry.csv", index=False)
    return root


def test_fit_recovers_the_physics_it_was_made_from(calibrated_room):
    """Every coefficient comes back close to the value the telemetry was made from."""
    res = CliRunner().invoke(main, ["fit", str(calibrated_room), "--json"])
    assert res.exit_code == 0, res.output
    phys = yaml.safe_load((calibrated_room / "physics.yaml").read_text())
    d = phys["server_defaults"]
    assert d["gpu_idle_w"] == pytest.approx(TRUE["gpu_idle_w"], abs=2)
    assert d["gpu_max_w"] == pytest.approx(TRUE["gpu_max_w"], abs=3)
    np.testing.assert_allclose(d["power_poly"], TRUE["poly"], atol=0.03)
    assert d["gpu_temp_c_per_w"] == pytest.approx(TRUE["c_per_w"], abs=0.002)
    assert d["gpu_temp_intercept_c"] == pytest.approx(TRUE["intercept_c"], abs=0.4)
    inlet = phys["inlet"]
    assert inlet["floor_c"] == pytest.approx(TRUE_INLET.floor_c, abs=0.5)
    assert inlet["knee_outside_c"] == pytest.approx(TRUE_INLET.knee_outside_c, abs=1.0)
    assert inlet["slope_c_per_c"] == pytest.approx(TRUE_INLET.slope_c_per_c, abs=0.1)
    assert inlet["cap_c"] == pytest.approx(TRUE_INLET.cap_c, abs=0.5)
    assert inlet["load_gain_c"] == pytest.approx(TRUE_INLET.load_gain_c, abs=0.5)
    fitted = pd.DataFrame(phys["servers"]).T
    assert (fitted["idle_power_kw"] - TRUE["idle_kw"]).abs().max() < 0.1
    assert (fitted["max_power_kw"] - TRUE["max_kw"]).abs().max() < 0.2
    assert (fitted["idle_airflow_cfm"] - TRUE["idle_cfm"]).abs().max() < 10
    true_offsets = pd.read_csv(calibrated_room / "servers.csv").set_index("server_id")["inlet_offset_c"]
    diff = fitted["inlet_offset_c"] - true_offsets.reindex(fitted.index)
    assert diff.std() < 0.1  # offsets are recovered up to a constant
    report = json.loads(res.output)["fits"]
    ci = report["gpu_temp"]["coefficients"]["gpu_temp_c_per_w"]["ci95"]
    assert ci[0] <= TRUE["c_per_w"] <= ci[1]
    assert report["gpu_temp"]["mae_c"] < 0.5 and report["gpu_temp"]["holdout_mae_c"] < 0.6


def test_samples_off_the_slot_clock_or_given_twice_fit_the_same_physics(calibrated_room, tmp_path):
    """Server power, airflow and the inlet's room load sum a server's (the room's) VMs: summed
    per raw timestamp, VMs sampled 30 s apart never met (max server power 11 kW instead of 6.5,
    place then refused the room) and a duplicated sample counted twice (4.3 kW: too low, the
    unsafe way). They are summed per slot of time_step_min now, each VM's samples averaged."""
    import shutil

    room = tmp_path / "skewed"
    shutil.copytree(calibrated_room, room, ignore=shutil.ignore_patterns("physics.yaml"))
    tel = pd.read_csv(room / "telemetry.csv", parse_dates=["timestamp"])
    late = tel["vm_id"].isin(tel["vm_id"].unique()[::2])
    tel.loc[late, "timestamp"] += pd.Timedelta(seconds=30)
    tel = pd.concat([tel, tel.iloc[::3]]).sort_values("timestamp", kind="stable")
    tel.to_csv(room / "telemetry.csv", index=False)
    res = CliRunner().invoke(main, ["fit", str(room), "--quiet"])
    assert res.exit_code == 0, res.output
    phys = yaml.safe_load((room / "physics.yaml").read_text())
    fitted = pd.DataFrame(phys["servers"]).T
    assert (fitted["idle_power_kw"] - TRUE["idle_kw"]).abs().max() < 0.1
    assert (fitted["max_power_kw"] - TRUE["max_kw"]).abs().max() < 0.2
    assert (fitted["idle_airflow_cfm"] - TRUE["idle_cfm"]).abs().max() < 10
    assert phys["inlet"]["load_gain_c"] == pytest.approx(TRUE_INLET.load_gain_c, abs=0.5)
    assert phys["inlet"]["floor_c"] == pytest.approx(TRUE_INLET.floor_c, abs=0.5)


def test_loader_uses_physics_yaml(calibrated_room):
    """After fit, the inventory's config and servers carry the fitted values (place reads them)."""
    CliRunner().invoke(main, ["fit", str(calibrated_room), "--quiet"])
    phys = yaml.safe_load((calibrated_room / "physics.yaml").read_text())
    inv = load_inventory(calibrated_room)
    assert inv.config.server_defaults.gpu_temp_c_per_w == pytest.approx(phys["server_defaults"]["gpu_temp_c_per_w"])
    assert inv.config.inlet.cap_c == pytest.approx(phys["inlet"]["cap_c"])
    sid, entry = next(iter(phys["servers"].items()))
    row = inv.servers.set_index("server_id").loc[sid]
    assert row["idle_power_kw"] == pytest.approx(entry["idle_power_kw"])
    assert row["gpu_temp_c_per_w"] == pytest.approx(entry["gpu_temp_c_per_w"])


def test_bad_physics_yaml_is_reported_with_its_file(calibrated_room, tmp_path):
    """A physics.yaml naming an unknown server or a non-number fails validation (exit 2)."""
    import shutil

    room = tmp_path / "room"
    shutil.copytree(calibrated_room, room)
    (room / "physics.yaml").write_text(yaml.safe_dump({"server_defaults": {"gpu_max_w": "lots"},
                                                       "servers": {"nope": {"idle_power_kw": 1.0}}}))
    _, problems = check_inventory(room)
    assert {(p.file, p.code) for p in problems} == {("physics.yaml", "bad_value"), ("physics.yaml", "unknown_server")}
    assert CliRunner().invoke(main, ["validate", str(room)]).exit_code == 2
    # each with the line of its key; a merged value out of range with its section's line
    (room / "physics.yaml").write_text("server_defaults:\n  gpu_idle_w: 900\nservers:\n  nope:\n    idle_power_kw: 1\n")
    _, problems = check_inventory(room)
    assert {(p.code, p.line) for p in problems if p.file == "physics.yaml"} == {("unknown_server", 4),
                                                                                ("bad_value", 1)}


def test_bad_calibration_values_name_file_line_and_column(calibrated_room, tmp_path):
    import shutil

    room = tmp_path / "room"
    shutil.copytree(calibrated_room, room)
    (room / "physics.yaml").unlink(missing_ok=True)
    tel = pd.read_csv(room / "telemetry.csv")
    tel["gpu_temp_c"] = tel["gpu_temp_c"].astype(object)
    tel.loc[5, "gpu_temp_c"] = "hot"
    tel.loc[7, "inlet_temp_c"] = 400.0
    tel.to_csv(room / "telemetry.csv", index=False)
    res = CliRunner().invoke(main, ["fit", str(room)])
    assert res.exit_code == 2
    assert "telemetry.csv:7 [gpu_temp_c]" in res.output and "telemetry.csv:9 [inlet_temp_c]" in res.output
    assert not (room / "physics.yaml").exists()
    # validate checks them the same way: it no longer passes what fit refuses
    res = CliRunner().invoke(main, ["validate", str(room)])
    assert res.exit_code == 2 and "telemetry.csv:7 [gpu_temp_c]" in res.output, res.output
    # every bad row is counted, the first 20 listed
    tel["inlet_temp_c"] = 95.0
    tel.to_csv(room / "telemetry.csv", index=False)
    res = CliRunner().invoke(main, ["fit", str(room)])
    assert res.exit_code == 2 and f"{len(tel) + 1} problem(s)" in res.output, res.output.splitlines()[0]


def test_validate_says_when_physics_yaml_overrides_the_models(calibrated_room):
    assert CliRunner().invoke(main, ["fit", str(calibrated_room), "--quiet"]).exit_code == 0  # also when run alone
    res = CliRunner().invoke(main, ["validate", str(calibrated_room)])
    assert res.exit_code == 0 and "physics.yaml (the physics file 'tapas-opt fit' writes) overrides" in " ".join(res.output.split())


def test_gpu_power_in_kw_is_named_as_a_unit_mistake(calibrated_room, tmp_path):
    """gpu_power_w given in kW passes the range check (0.4 is a number of watts) but fits a 0.4 W
    GPU and a 69 C/W slope: fit says the unit looks wrong instead of 'rows must vary'."""
    import shutil

    room = tmp_path / "room"
    shutil.copytree(calibrated_room, room)
    (room / "physics.yaml").unlink(missing_ok=True)
    tel = pd.read_csv(room / "telemetry.csv")
    tel["gpu_power_w"] = tel["gpu_power_w"] / 1000.0
    tel.to_csv(room / "telemetry.csv", index=False)
    res = CliRunner().invoke(main, ["fit", str(room)])
    skipped = [line for line in res.output.splitlines() if line.startswith("skipped gpu_")]
    assert len(skipped) == 2 and all("looks like kW" in line for line in skipped), res.output


def test_fit_without_calibration_columns_says_so(tmp_path):
    root = write_room(RoomSpec(servers=4, pending_vms=1, seed=1), tmp_path / "plain")
    res = CliRunner().invoke(main, ["fit", str(root)])
    assert res.exit_code == 2 and "calibration columns" in res.output
    assert not (root / "physics.yaml").exists()
    # --json says it failed, as every command's failure does (it lacked ok and exit_code)
    got = json.loads(CliRunner().invoke(main, ["fit", str(root), "--json"]).stdout)
    assert got["ok"] is False and got["exit_code"] == 2 and "no model could be fitted" in got["error"]


def test_a_stale_physics_yaml_does_not_block_the_fit_that_replaces_it(calibrated_room, tmp_path):
    """fit loaded the inventory with its physics.yaml: after a server was renamed in servers.csv
    the old file's entry was an unknown_server, and every re-run of fit failed on it (its hint
    said to re-run fit). fit now reads the inventory without it, so a re-fit is the same as the
    first fit."""
    import shutil

    room = tmp_path / "room"
    shutil.copytree(calibrated_room, room)
    (room / "physics.yaml").unlink(missing_ok=True)
    assert CliRunner().invoke(main, ["fit", str(room), "--quiet"]).exit_code == 0
    first = yaml.safe_load((room / "physics.yaml").read_text())
    assert CliRunner().invoke(main, ["fit", str(room), "--quiet"]).exit_code == 0
    again = yaml.safe_load((room / "physics.yaml").read_text())
    assert again["servers"] == first["servers"] and again["inlet"] == first["inlet"]
    old = next(iter(first["servers"]))
    for name in ("servers.csv", "vms.csv"):
        (room / name).write_text((room / name).read_text().replace(old, "RENAMED"))
    assert CliRunner().invoke(main, ["validate", str(room)]).exit_code == 2  # the old file no longer fits
    res = CliRunner().invoke(main, ["fit", str(room), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "RENAMED" in yaml.safe_load((room / "physics.yaml").read_text())["servers"]


def test_fit_says_what_it_shows_but_does_not_write(calibrated_room, tmp_path):
    """With too few rows per server, the room-wide server-power and airflow fits were printed
    with 'physics written' and written nowhere; and the pooled GPU-temperature model does not
    reach servers whose servers.csv gives their own coefficients. Both are said."""
    import shutil

    room = tmp_path / "room"
    shutil.copytree(calibrated_room, room)
    (room / "physics.yaml").unlink(missing_ok=True)
    tel = pd.read_csv(room / "telemetry.csv", parse_dates=["timestamp"])
    tel[tel["timestamp"] >= tel["timestamp"].max() - pd.Timedelta(hours=19)].to_csv(room / "telemetry.csv", index=False)
    res = CliRunner().invoke(main, ["fit", str(room), "--json"])
    fits = json.loads(res.stdout)["fits"]
    for name in ("server_power", "airflow"):
        assert any(n.startswith("not written: per server only") for n in fits[name]["notes"]), fits[name]
    assert any("keep the coefficients servers.csv gives them" in n for n in fits["gpu_temp"]["notes"])


def test_fit_keeps_models_the_telemetry_cannot_identify_out(calibrated_room, tmp_path):
    """Constant GPU power, and outside temperatures that never reach the knee, cannot determine
    the GPU power curve or the inlet model: those fits are skipped with the reason, the rest is
    written, and the inventory still validates (a nonsense physics.yaml would break every later
    command on it)."""
    import shutil

    room = tmp_path / "room"
    shutil.copytree(calibrated_room, room)
    (room / "physics.yaml").unlink(missing_ok=True)
    tel = pd.read_csv(room / "telemetry.csv")
    tel["gpu_power_w"] = 250.0
    tel.to_csv(room / "telemetry.csv", index=False)
    out = pd.read_csv(room / "outside.csv")
    out["temp_c"] = 5.0 + 0.01 * np.arange(len(out)) % 3  # always far below the knee
    out.to_csv(room / "outside.csv", index=False)
    res = CliRunner().invoke(main, ["fit", str(room), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert "gpu_power" in doc["skipped"] and "not written" in doc["skipped"]["gpu_power"]
    assert "inlet" in doc["skipped"]
    assert {"server_power", "airflow"} <= set(doc["fits"])
    physics = yaml.safe_load((room / "physics.yaml").read_text())
    assert "gpu_idle_w" not in physics.get("server_defaults", {}) and "inlet" not in physics
    assert CliRunner().invoke(main, ["validate", str(room)]).exit_code == 0


@pytest.mark.parametrize("column, value, model", [("gpu_power_w", 200.0, "gpu_power"),
                                                  ("server_power_kw", 0.0, "server_power"),
                                                  ("server_power_kw", 5.0, "server_power"),
                                                  ("airflow_cfm", 0.0, "airflow")])
def test_a_stuck_or_dead_sensor_is_not_fitted(calibrated_room, tmp_path, column, value, model):
    """A sensor stuck at one value (or reporting 0) fits idle = max up to rounding: written, it
    broke the inventory (200 W GPUs: max must exceed idle) or made every server's power constant
    (0 kW: a third of the row power). Such a model is skipped as not rising with load, and the
    inventory still validates; a constant outside temperature (no knee to find) is skipped too
    instead of crashing."""
    import shutil

    room = tmp_path / "room"
    shutil.copytree(calibrated_room, room)
    (room / "physics.yaml").unlink(missing_ok=True)
    tel = pd.read_csv(room / "telemetry.csv")
    tel[column] = value
    tel.to_csv(room / "telemetry.csv", index=False)
    out = pd.read_csv(room / "outside.csv")
    out["temp_c"] = 10.0
    out.to_csv(room / "outside.csv", index=False)
    res = CliRunner().invoke(main, ["fit", str(room), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert model not in doc["fits"]
    assert "does not rise with load" in doc["skipped"][model] or "expected 0.01..1000" in doc["skipped"][model] \
        or "expected 1..1e+06" in doc["skipped"][model]
    assert "spans only 0.0 C" in doc["skipped"]["inlet"]
    physics = yaml.safe_load((room / "physics.yaml").read_text())
    keys = {"gpu_power": "gpu_idle_w", "server_power": "idle_power_kw", "airflow": "idle_airflow_cfm"}
    assert not any(keys[model] in entry for entry in [physics.get("server_defaults", {}),
                                                      *physics.get("servers", {}).values()])
    assert CliRunner().invoke(main, ["validate", str(room)]).exit_code == 0


def test_an_outside_file_for_another_period_is_named_as_the_reason(calibrated_room, tmp_path):
    """Without inlet sensors the GPU-temperature fit estimates the inlet from outside.csv; when
    the two files cover different periods, the skip says so (it named inlet_temp_c, a column
    the user never had)."""
    import shutil

    room = tmp_path / "room"
    shutil.copytree(calibrated_room, room)
    (room / "physics.yaml").unlink(missing_ok=True)
    tel = pd.read_csv(room / "telemetry.csv").drop(columns=["inlet_temp_c"])
    tel.to_csv(room / "telemetry.csv", index=False)
    out = pd.read_csv(room / "outside.csv", parse_dates=["timestamp"])
    out["timestamp"] = out["timestamp"] - pd.Timedelta(days=400)
    out.to_csv(room / "outside.csv", index=False)
    res = CliRunner().invoke(main, ["fit", str(room), "--json", "--dry-run"])
    doc = json.loads(res.stdout)
    assert "do not overlap" in doc["skipped"]["gpu_temp"]


def test_generated_sensors_are_the_physics_fit_recovers(tmp_path, shared_data):
    """generate --sensors writes the calibration columns from the physics at the published
    defaults (and each server's own GPU-temperature coefficients) plus sensor noise: fit finds
    those defaults again, so the calibration guide can be tried on a room whose truth is known."""
    from tapas_opt.calibrate.run import fit_inventory

    weather = shared_data / "weather" / "USA_VA_Leesburg.Exec.epw"  # outside crosses the inlet's knee
    res = CliRunner().invoke(main, ["generate", "--servers", "24", "--pending", "4", "--sensors",
                                    "--weather", str(weather), "--out", str(tmp_path / "room")])
    assert res.exit_code == 0, res.output
    calib = fit_inventory(load_inventory(tmp_path / "room"))
    f = calib.fits
    assert f["gpu_power"].value("gpu_idle_w") == pytest.approx(50.0, abs=2.0)
    assert f["gpu_power"].value("gpu_max_w") == pytest.approx(400.0, abs=2.0)
    assert f["server_power"].value("idle_power_kw") == pytest.approx(2.0, abs=0.02)
    assert f["server_power"].value("max_power_kw") == pytest.approx(6.5, abs=0.02)
    assert f["airflow"].value("max_airflow_cfm") == pytest.approx(840.0, abs=3.0)
    assert f["inlet"].value("slope_c_per_c") == pytest.approx(0.95, abs=0.02)
    assert any("median MAE 0.4" in note for note in f["gpu_temp"].notes)  # the 0.4 C sensor noise
    units = {name: [n.rsplit(" ", 1)[-1] for n in f[name].notes if "median MAE" in n]
             for name in ("gpu_temp", "server_power", "airflow")}
    assert units == {"gpu_temp": ["C"], "server_power": ["kW"], "airflow": ["CFM"]}  # as printed, not 'kw'


def test_an_inlet_fit_on_weather_that_never_fell_below_the_knee_says_the_floor_is_extrapolated():
    """fit wrote the inlet floor and knee as if measured when the outside temperature never went
    below the knee (a summer of telemetry): any lower knee with a lower floor fits as well. The
    fit now says so, as it already did for a cap the weather never reached."""
    from tapas_opt.calibrate.regress import fit_inlet

    rng = np.random.default_rng(0)
    n = 3000
    out = rng.uniform(20.0, 32.0, n)  # the true knee is 15 C, the cap at 40 C: neither in the data
    load = rng.uniform(0.3, 0.9, n)
    inlet = 18.0 + 0.5 * (out - 15.0) + 2.0 * load + rng.normal(0.0, 0.2, n)
    frame = pd.DataFrame({"timestamp": pd.date_range("2026-06-01", periods=n, freq="h"),
                          "server_id": np.where(np.arange(n) % 2, "S1", "S2"), "inlet_temp_c": inlet,
                          "outside_c": out, "room_load": load})
    notes = fit_inlet(frame).notes
    assert any("knee_outside_c and floor_c are an extrapolation" in n for n in notes), notes
    assert any("cap_c is an extrapolation" in n for n in notes), notes


def test_too_few_rows_are_said_with_the_columns_the_user_wrote(calibrated_room, tmp_path):
    """'3 complete rows of x_power, server_power_kw' named a column only the fit computes; the
    user wrote load and server_power_kw."""
    import shutil

    room = tmp_path / "room"
    shutil.copytree(calibrated_room, room)
    (room / "physics.yaml").unlink(missing_ok=True)
    tel = pd.read_csv(room / "telemetry.csv")
    tel.loc[tel.index[5:], "server_power_kw"] = np.nan
    tel.to_csv(room / "telemetry.csv", index=False)
    res = CliRunner().invoke(main, ["fit", str(room), "--json"])
    assert res.exit_code == 0, res.output
    said = json.loads(res.output)["skipped"]["server_power"]
    assert "complete rows of load, server_power_kw" in said and "x_power" not in said
