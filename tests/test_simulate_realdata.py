"""The simulator on the real traces in ../shared/data: the seeded mapping (Azure LLM week for
SaaS endpoints, Cornell GPU servers and Alibaba serving containers for IaaS customers) and a
small generated room simulated end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tapas_opt.generate import RoomSpec, write_room
from tapas_opt.simulate.engine import Engine, EngineOptions
from tapas_opt.simulate.policies import POLICIES, place_scenario, resolve_policies
from tapas_opt.simulate.run import run_policies
from tapas_opt.simulate.scenario import ScenarioOptions, build_scenario
from tapas_opt.simulate.traces import TraceMapping, azure_minute_of_week, map_loads
from tapas_opt.simulate.validate import check_conservation

pytestmark = pytest.mark.realdata
START = pd.Timestamp("2026-06-01 00:00")


def _vms() -> pd.DataFrame:
    rows = [{"vm_id": f"s{e}{n}", "kind": "saas", "customer": "llm", "endpoint": f"ep{e}", "gpus": 8}
            for e in range(3) for n in range(2)]
    rows += [{"vm_id": f"i{c}{n}", "kind": "iaas", "customer": f"cust{c}", "endpoint": None, "gpus": 8}
             for c in range(8) for n in range(2)]
    return pd.DataFrame(rows)


def _map(shared_data, seed=0):
    vms = _vms()
    times = pd.date_range(START, periods=2016, freq="5min")
    with_history = np.arange(len(vms)) % 2 == 0
    return vms, map_loads(vms, START, times, 5, 60, with_history, shared_data, TraceMapping(seed=seed))


def test_mapping_is_seeded_and_bounded(shared_data):
    """Same seed, same loads; another seed, other loads; every load in 0..1; only VMs flagged
    with history get four weeks of hourly telemetry, ending where the simulated week starts."""
    vms, a = _map(shared_data, 0)
    _, b = _map(shared_data, 0)
    _, c = _map(shared_data, 1)
    np.testing.assert_array_equal(a.vm_load, b.vm_load)
    np.testing.assert_array_equal(a.endpoint_load, b.endpoint_load)
    assert not np.allclose(np.nan_to_num(a.vm_load), np.nan_to_num(c.vm_load))
    iaas = (vms["kind"] == "iaas").to_numpy()
    assert np.isfinite(a.vm_load[iaas]).all() and np.isnan(a.vm_load[~iaas]).all()
    assert (a.vm_load[iaas] >= 0).all() and (a.vm_load[iaas] <= 1).all()
    assert (a.endpoint_load >= 0).all() and (a.endpoint_load <= 1).all()
    h = a.history
    assert set(h["vm_id"]) == set(vms["vm_id"][::2])
    assert h["timestamp"].min() == START - pd.Timedelta(days=28)
    assert h["timestamp"].max() == START - pd.Timedelta(hours=1)
    assert h.groupby("vm_id").size().eq(28 * 24).all()
    kinds = " ".join(a.sources["source"])
    assert "azure-2024" in kinds and ("cornell" in kinds or "alibaba" in kinds)


def test_saas_endpoint_follows_the_azure_week(shared_data):
    """An endpoint's actual load is an affine image of its Azure service's 5-minute request
    rate (shifted by its whole-hour time shift): correlation 1."""
    vms, m = _map(shared_data, 0)
    azure = azure_minute_of_week(str(shared_data))
    row = m.sources.set_index("family").loc["ep0"]
    service = "code" if " code " in f" {row['source']} " else "conv"
    shift = int(row["source"].split("shift ")[1].split(" h")[0])
    times = pd.date_range(START, periods=2016, freq="5min")
    mow = (times.day_of_week * 1440 + times.hour * 60 + times.minute).to_numpy() - 60 * shift
    per5 = np.array([azure[service][(m0 + np.arange(5)) % 10080].mean() for m0 in mow])
    ep = list(m.endpoint_ids).index("ep0")
    y = m.endpoint_load[ep]
    assert np.corrcoef(per5, y)[0, 1] > 0.999
    # code peaks about 9x its hourly low, conversation 1.8x: both keep a clear daily cycle
    assert y.max() / y.min() > 1.5


def test_iaas_customers_share_their_source(shared_data):
    """VMs of one customer follow one source series, each with its own scale."""
    vms, m = _map(shared_data, 0)
    a, b = m.vm_load[vms.index[vms["vm_id"] == "i00"][0]], m.vm_load[vms.index[vms["vm_id"] == "i01"][0]]
    assert np.corrcoef(a, b)[0, 1] > 0.95


@pytest.mark.slow
def test_generated_room_end_to_end(shared_data, tmp_path):
    """An 80-server generated room, a week at 5-minute steps with real traces: every policy
    conserves power and airflow; routing (same placement as the baseline) does not raise the
    peak row power; every VM is placed."""
    room = write_room(RoomSpec(servers=80, pending_vms=20, seed=2), tmp_path / "room")
    sc = build_scenario(room, ScenarioOptions(traces=str(shared_data)))
    assert sc.n_steps == 2016
    run = run_policies(sc, resolve_policies(["baseline", "route", "full"]), fast_placement=True)
    by = {s["policy"]: s for s in run.summaries}
    assert by["route"]["peak_row_power_fraction"] <= by["baseline"]["peak_row_power_fraction"] + 1e-9
    assert all(s["vms"]["unplaced"] == 0 for s in run.summaries)
    pl = place_scenario(sc, "random")
    eng = Engine(sc, POLICIES["full"], pl, EngineOptions(keep_vm_loads=True))
    assert check_conservation(eng, eng.run()) == []


def test_missing_and_truncated_traces_are_bad_input(shared_data, tmp_path):
    """Every trace a room needs that the directory lacks is listed at once (the first one only,
    before); an Azure file cut to its first 100 minutes is refused (it was interpolated flat
    over the week, silently)."""
    from tapas_opt.errors import InventoryError

    vms = _vms()
    times = pd.date_range(START, periods=168, freq="60min")
    with_history = np.zeros(len(vms), bool)
    with pytest.raises(InventoryError) as err:
        map_loads(vms, START, times, 60, 60, with_history, tmp_path, TraceMapping())
    said = [p.message for p in err.value.problems]
    assert len(said) == 3 and all(p.code == "missing_file" for p in err.value.problems)
    assert [any(name in m for m in said) for name in ("azure", "cornell", "alibaba")] == [True] * 3
    azure = next((shared_data / "azure_llm_2024_minutes").glob("*.csv"))
    cut = tmp_path / "cut" / "azure_llm_2024_minutes" / azure.name
    cut.parent.mkdir(parents=True)
    cut.write_text("".join(azure.open().readlines()[:101]))
    with pytest.raises(InventoryError) as err:
        azure_minute_of_week(str(tmp_path / "cut"))
    assert {p.code for p in err.value.problems} == {"bad_traces"}
    assert any("of the week's minutes, under the 90%" in p.message for p in err.value.problems)


def test_text_in_trace_files_is_bad_input_on_its_line(shared_data, tmp_path):
    """A Cornell utilisation cell 'n/a' was read as a gap and interpolated (or, in many rows,
    said as 'traces not found'); an Azure cell 'abc' was said as 'data row N' and hid the
    Cornell file's problem. Both are now refused at once, each with its file line."""
    from tapas_opt.errors import InventoryError

    root = tmp_path / "traces"
    (root / "azure_llm_2024_minutes").mkdir(parents=True)
    (root / "cornell_biohpc_gpu_servers").mkdir()
    (root / "alibaba_genai_2026").symlink_to(shared_data / "alibaba_genai_2026")
    azure = next((shared_data / "azure_llm_2024_minutes").glob("*.csv"))
    lines = azure.read_text().splitlines(keepends=True)
    cells = lines[199].split(",")
    cells[1] = "abc"  # code_requests
    lines[199] = ",".join(cells)
    (root / "azure_llm_2024_minutes" / azure.name).write_text("".join(lines))
    for f in (shared_data / "cornell_biohpc_gpu_servers").glob("*_usage_stats.txt"):
        target = root / "cornell_biohpc_gpu_servers" / f.name
        if f.name != "cbsugpu05_usage_stats.txt":
            target.symlink_to(f)
            continue
        rows = f.read_text(encoding="utf-8-sig").splitlines(keepends=True)
        cells = rows[99].split("\t")
        cells[8] = "n/a"  # utilave
        rows[99] = "\t".join(cells)
        target.write_text("".join(rows))
    times = pd.date_range(START, periods=168, freq="60min")
    with pytest.raises(InventoryError) as err:
        map_loads(_vms(), START, times, 60, 60, np.zeros(len(_vms()), bool), root, TraceMapping())
    got = {(p.code, p.file.split("/")[-1], p.line, p.column) for p in err.value.problems}
    assert got == {("bad_type", azure.name, 200, "code_requests"),
                   ("bad_type", "cbsugpu05_usage_stats.txt", 100, "utilave")}
