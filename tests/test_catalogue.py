"""The LLM configuration catalogue: validation, ratios, and numbers traced back to their sources."""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tapas_opt.errors import MORE, InventoryError, count_problems
from tapas_opt.reconfig.catalogue import default_catalogue_path, load_catalogue, validate_catalogue

REPO = Path(__file__).resolve().parents[1]
CATALOGUE = REPO / "models" / "catalogue" / "llm_configs.csv"
EFFECTS = REPO / "models" / "catalogue" / "knob_effects.csv"
REF = re.compile(r"^(?P<file>[^\[]+)\[(?P<keys>.*)\]$")


def _builder():
    spec = importlib.util.spec_from_file_location("build_catalogue", REPO / "models" / "scripts" / "build_catalogue.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _keys(ref: str) -> tuple[str, dict[str, str]]:
    """'file[k=v,k2=v2]' -> (file, {k: v}); values may contain '/'."""
    m = REF.match(ref)
    assert m, f"unparseable source_ref {ref!r}"
    keys = dict(part.split("=", 1) for part in m.group("keys").split(","))
    return m.group("file"), keys


def test_bundled_catalogue_loads_with_one_default_per_family():
    """The committed catalogue validates; every family has one default that meets its SLO."""
    cat = load_catalogue(CATALOGUE)
    assert set(cat.families) == {"llama-70b", "mixtral-8x7b", "llama-8b"}
    for family, pos in cat.default_of.items():
        row = cat.configs.loc[pos]
        assert row["family"] == family and row["slo_ok"] and row["quality"] == 1.0
        assert row["energy_ratio"] == pytest.approx(1.0) and row["capacity_ratio"] == pytest.approx(1.0)
    # The package carries the same catalogue (a link in the source tree, a copy once installed).
    installed = default_catalogue_path()
    assert installed.read_bytes() == CATALOGUE.read_bytes()
    assert installed.with_name("knob_effects.csv").read_bytes() == CATALOGUE.with_name("knob_effects.csv").read_bytes()


def test_every_row_names_its_source_and_class():
    """Rows are measured, derived or modelled, name a base row and list the effects applied."""
    cat = pd.read_csv(CATALOGUE)
    assert set(cat["source"]) <= {"measured", "derived", "modelled"}
    assert cat["source_ref"].str.startswith("mlenergy_v2/").all()
    assert cat["quality_ref"].str.startswith("qllm_eval_quant_quality/").all()
    measured = cat[cat["source"] == "measured"]
    assert (measured["precision"] == "bf16").all() and (measured["power_level"] == 1.0).all()
    assert not measured["effects"].str.contains("tp:|precision:").any()
    modelled = cat[cat["source"] == "modelled"]
    assert modelled["power_level"].isin([0.9, 0.8, 0.6, 0.5]).all()


def test_ratios_follow_the_definitions():
    """energy, capacity, speed and busy-GPU share are ratios to the family default (docstring)."""
    cat = load_catalogue(CATALOGUE).configs
    row = cat[cat["config_id"] == "llama-70b/70b-bf16-tp4x1-b768-p1.00"].iloc[0]
    d = cat[cat["config_id"] == "llama-70b/70b-bf16-tp8x1-b768-p1.00"].iloc[0]
    dyn = lambda r: (r["power_w"] - r["gpus_used"] * r["idle_gpu_w"]) / r["throughput_tok_s"]  # noqa: E731
    assert row["energy_ratio"] == pytest.approx(dyn(row) / dyn(d))
    assert row["capacity_ratio"] == pytest.approx(row["throughput_tok_s"] / d["throughput_tok_s"])
    assert row["active_share"] == 0.5
    assert row["speed_ratio"] == pytest.approx(d["tbt_ms"] / row["tbt_ms"])
    assert not row["quantised_or_smaller"]
    small = cat[cat["config_id"] == "llama-70b/8b-w8a8-tp1x8-b320-p1.00"].iloc[0]
    assert small["quantised_or_smaller"] and small["reload_key"] != d["reload_key"]


@pytest.mark.parametrize("mutate, code, column", [
    (lambda df: df.drop(columns=["quality"]), "missing_column", None),
    (lambda df: df.assign(quality=df["quality"].where(df.index != 3, "1.5")), "out_of_range", "quality"),
    (lambda df: df.assign(is_default=df["is_default"].where(df.index != 1, "True")), "bad_default", "is_default"),
    (lambda df: df.assign(power_w=df["power_w"].where(df.index != 2, "10")), "bad_power_range", "power_w"),
    (lambda df: df.assign(config_id=df["config_id"].where(df.index != 4, df.at[0, "config_id"])), "duplicate_id", "config_id"),
    (lambda df: df.assign(tp=df["tp"].where(df.index != 5, "two")), "bad_type", "tp"),
    # physically impossible: 16-way tensor parallelism on the 8 busy GPUs it claims
    (lambda df: df.assign(tp=df["tp"].where(df.index != 6, "16")), "gpus_mismatch", "gpus_used"),
    # quality is relative to the default: a default of 0.5 made an untouched room lose 43 %
    (lambda df: df.assign(quality=df["quality"].where(df["is_default"].str.lower() != "true", "0.5")),
     "bad_default", "quality"),
])
def test_validation_names_file_line_and_column(tmp_path, mutate, code, column):
    """A broken catalogue is refused with the problem's code, line and column."""
    raw = pd.read_csv(CATALOGUE, dtype=str, keep_default_na=False)
    bad = mutate(raw.copy())
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(InventoryError) as err:
        load_catalogue(path)
    problems = err.value.problems
    assert any(p.code == code and p.file == "bad.csv" and (column is None or p.column == column) for p in problems)
    assert all(p.line is None or p.line >= 2 for p in problems)


def edited_catalogue_problems(tmp_path, cells: dict) -> list:
    """The problems of the bundled catalogue with ``cells`` ({(row, column): text}) changed."""
    raw = pd.read_csv(CATALOGUE, dtype=str, keep_default_na=False)
    for (row, column), text in cells.items():
        raw.loc[row, column] = text
    path = tmp_path / "bad.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(InventoryError) as err:
        load_catalogue(path)
    return err.value.problems


def test_type_and_range_problems_of_a_catalogue_come_together(tmp_path):
    """A text cell used to hide a range problem in another row until it was fixed; numbers are
    shown as numbers (not np.float64(4.5))."""
    problems = edited_catalogue_problems(tmp_path, {(3, "power_level"): "abc", (2, "tp"): "0"})
    got = {(p.line, p.column): p.message for p in problems}
    assert set(got) == {(5, "power_level"), (4, "tp")}
    assert got[(4, "tp")] == "value 0 must be >= 1"


def test_a_catalogue_wrong_on_every_row_is_listed_in_a_screenful_with_its_true_count(tmp_path):
    raw = pd.read_csv(CATALOGUE, dtype=str, keep_default_na=False)
    raw.loc[:29, "quality"] = "2"
    path = tmp_path / "bad.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(InventoryError) as err:
        load_catalogue(path)
    problems = err.value.problems
    assert [p.line for p in problems[:-1]] == list(range(2, 22))
    assert problems[-1].message == MORE.format(10) and count_problems(problems) == 30


def _refused(tmp_path, raw: pd.DataFrame) -> dict:
    """The problems of a catalogue written from ``raw``, by (line, column): code and message."""
    path = tmp_path / "bad.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(InventoryError) as err:
        load_catalogue(path)
    return {(p.line, p.column): (p.code, p.message) for p in err.value.problems}


def _raw() -> pd.DataFrame:
    return pd.read_csv(CATALOGUE, dtype=str, keep_default_na=False)


@pytest.mark.parametrize("column", ["family", "config_id", "model", "size", "precision", "source"])
def test_an_empty_text_cell_is_a_missing_value_on_its_line(tmp_path, column):
    """An empty family crashed add_ratios (exit 3): every required text cell must be given."""
    raw = _raw()
    raw.loc[6, column] = ""
    got = _refused(tmp_path, raw)
    assert got[(8, column)][0] == "missing_value"


@pytest.mark.parametrize("cell", ["inf", "-inf", "nan"])
def test_a_non_finite_number_is_refused(tmp_path, cell):
    """One inf throughput made every endpoint of its family serve nothing (exit 1, no hint)."""
    raw = _raw()
    raw.loc[4, "throughput_tok_s"] = cell
    got = _refused(tmp_path, raw)
    assert got[(6, "throughput_tok_s")][0] in ("out_of_range", "missing_value")


def test_negative_powers_levels_above_one_and_empty_ids_are_refused_at_once(tmp_path):
    """power_w and idle_gpu_w >= 0, power_level in (0, 1] (1 = uncapped), config_id given:
    all used to pass; every cell is named in one error."""
    raw = _raw()
    raw.loc[2, "power_w"] = "-700"
    raw.loc[2, "idle_gpu_w"] = "-50"
    raw.loc[3, "power_level"] = "5"
    raw.loc[5, "config_id"] = ""
    got = _refused(tmp_path, raw)
    assert {k: v[0] for k, v in got.items()} == {
        (4, "power_w"): "out_of_range", (4, "idle_gpu_w"): "out_of_range",
        (5, "power_level"): "out_of_range", (7, "config_id"): "missing_value"}


def test_slo_ok_must_agree_with_the_latency_and_its_slo(tmp_path):
    """slo_ok is tbt_ms <= slo_tbt_ms (docs): a row claiming otherwise ended as an infeasible
    plan (exit 1) with 'slo_latency' violations; now it is bad input naming both values."""
    raw = _raw()
    slow = raw.index[raw["slo_ok"] == "False"][0]
    raw.loc[slow, "slo_ok"] = "True"
    fast = raw.index[(raw["slo_ok"] == "True") & (raw["is_default"] == "False")][0]
    raw.loc[fast, "slo_ok"] = "False"
    got = _refused(tmp_path, raw)
    code, message = got[(int(slow) + 2, "slo_ok")]
    assert code == "slo_mismatch"
    assert f"tbt_ms {float(raw.at[slow, 'tbt_ms']):g} > slo_tbt_ms {float(raw.at[slow, 'slo_tbt_ms']):g}" in message
    assert got[(int(fast) + 2, "slo_ok")][0] == "slo_mismatch"
    assert len(got) == 2


def test_a_bad_cell_hides_nothing_but_itself(tmp_path):
    """A row with one unreadable cell was dropped whole, so its other cells' rules (gpus_used
    = tp x replicas, slo_ok against the latencies) waited for the next run; an unreadable
    cell stays silent in those rules (no second problem about it)."""
    raw = _raw()
    raw.loc[2, "throughput_tok_s"] = "abc"
    raw.loc[2, "gpus_used"] = "4"  # tp 8 x 1 replica
    slow = raw.index[raw["slo_ok"] == "False"][0]
    raw.loc[slow, "quality"] = "x"
    raw.loc[slow, "slo_ok"] = "True"
    raw.loc[5, "tp"] = "zero"  # blank in the rules: no gpus_mismatch from it
    raw.loc[6, "slo_ok"] = "perhaps"  # unreadable flag: no slo_mismatch from it
    got = {k: v[0] for k, v in _refused(tmp_path, raw).items()}
    assert got == {(4, "throughput_tok_s"): "bad_type", (4, "gpus_used"): "gpus_mismatch",
                   (int(slow) + 2, "quality"): "bad_type", (int(slow) + 2, "slo_ok"): "slo_mismatch",
                   (7, "tp"): "bad_type", (8, "slo_ok"): "bad_type"}


def test_a_default_that_breaks_its_slo_is_refused(tmp_path):
    """The default is what a VM runs when nothing is said: it must meet the SLO."""
    raw = _raw()
    default = raw.index[raw["is_default"] == "True"][0]
    raw.loc[default, "tbt_ms"] = str(2 * float(raw.at[default, "slo_tbt_ms"]))
    raw.loc[default, "slo_ok"] = "False"
    got = _refused(tmp_path, raw)
    assert list(got.values()) == [("bad_default", f"the default of family {raw.at[default, 'family']!r} breaks its SLO")]


def test_missing_catalogue_says_what_to_do(tmp_path):
    """A missing file names the ways to supply one."""
    with pytest.raises(InventoryError, match="catalogue not found"):
        load_catalogue(tmp_path / "none.csv")


def test_operator_catalogue_in_the_same_format(tmp_path):
    """An operator's catalogue (subset, own source tag) validates and gets ratios."""
    raw = pd.read_csv(CATALOGUE, dtype=str, keep_default_na=False)
    own = raw[raw["family"] == "llama-8b"].copy()
    own["source"] = "operator"
    path = tmp_path / "own.csv"
    own.to_csv(path, index=False)
    cat = load_catalogue(path)
    assert cat.families == ["llama-8b"]
    df, problems = validate_catalogue(own.reset_index(drop=True))
    assert not problems


# ---- numbers traced back to ../shared/data ---------------------------------------------------

@pytest.mark.realdata
def test_measured_rows_rederive_from_mlenergy_v2(shared_data):
    """Every measured row's power, throughput and TBT equal its mlenergy_v2 source row
    (times the instances per server)."""
    cat = pd.read_csv(CATALOGUE)
    src = pd.read_csv(shared_data / "mlenergy_v2" / "mlenergy_v2_llm_configs.csv")
    measured = cat[cat["source"] == "measured"]
    assert len(measured) >= 20
    for rec in measured.to_dict("records"):
        file, keys = _keys(rec["source_ref"])
        assert file == "mlenergy_v2/mlenergy_v2_llm_configs.csv"
        row = src[(src["task"] == keys["task"]) & (src["gpu_dir"] == keys["gpu_dir"]) & (src["Model"] == keys["Model"])
                  & (src["TP"] == int(keys["TP"])) & (src["PP"] == int(keys["PP"]))
                  & (src["Max BS (reqs)"] == int(keys["Max BS (reqs)"]))]
        assert len(row) == 1, rec["config_id"]
        row = row.iloc[0]
        reps = rec["replicas"]
        assert rec["power_w"] == pytest.approx(row["derived_avg_power_w_total"] * reps, rel=1e-4)
        assert rec["throughput_tok_s"] == pytest.approx(row["Token tput (tok/s)"] * reps, rel=1e-4)
        assert rec["tbt_ms"] == pytest.approx(1000 * row["Avg TPOT (s)"], rel=1e-4)


@pytest.mark.realdata
def test_precision_effect_rederives_from_mlenergy_v3(shared_data):
    """w8a8: median throughput, dynamic power and ITL ratios of Qwen3-235B FP8 vs bf16 on 8 H100s."""
    v3 = pd.read_csv(shared_data / "mlenergy_v3" / "mlenergy_v3_llm_configs.csv")
    base = "Qwen/Qwen3-235B-A22B-Instruct-2507"
    sel = v3[(v3["gpu_model"] == "H100") & (v3["task"] == "lm-arena-chat") & (v3["num_gpus"] == 8)]
    bf = sel[sel["model_id"] == base].set_index("max_num_seqs")
    fp = sel[sel["model_id"] == base + "-FP8"].set_index("max_num_seqs")
    both = bf.index.intersection(fp.index)
    tput = np.median(fp.loc[both, "output_throughput_tokens_per_sec"] / bf.loc[both, "output_throughput_tokens_per_sec"])
    dyn = np.median((fp.loc[both, "avg_power_watts"] - 8 * 75) / (bf.loc[both, "avg_power_watts"] - 8 * 75))
    eff = pd.read_csv(EFFECTS).set_index("effect_id")
    assert eff.at["precision:w8a8", "throughput_ratio"] == pytest.approx(tput, rel=1e-4)
    assert eff.at["precision:w8a8", "dyn_power_ratio"] == pytest.approx(dyn, rel=1e-4)
    # A derived row = its measured base row x the effects it lists.
    cat = pd.read_csv(CATALOGUE).set_index("config_id")
    row = cat.loc["llama-70b/70b-w8a8-tp8x1-b768-p1.00"]
    base_row = cat.loc["llama-70b/70b-bf16-tp8x1-b768-p1.00"]
    assert row["throughput_tok_s"] == pytest.approx(base_row["throughput_tok_s"] * tput, rel=1e-4)
    dyn_base = base_row["power_w"] - 8 * 50
    assert row["power_w"] == pytest.approx(8 * 50 + dyn_base * dyn, rel=1e-4)


@pytest.mark.realdata
def test_tensor_parallel_effect_rederives_from_splitwise(shared_data):
    """TP4 vs TP8: whole-request throughput and active-GPU dynamic power of Llama2-70B on A100."""
    sw = pd.read_csv(shared_data / "splitwise_perf_model" / "perf_model.csv")
    sel = sw[(sw["model"] == "llama2-70b") & (sw["hardware"] == "a100-80gb") & (sw["prompt_size"] == 512)
             & (sw["token_size"] == 128) & (sw["batch_size"] == 16)]
    g = sel.groupby("tensor_parallel").mean(numeric_only=True)
    tput = (16 * 128 / g["e2e_time"]).to_dict()
    dyn = ((g["average_power"] * 400 - 50) * g.index).to_dict()
    eff = pd.read_csv(EFFECTS).set_index("effect_id")
    assert eff.at["tp:4", "throughput_ratio"] == pytest.approx(tput[4] / tput[8], rel=1e-4)
    assert eff.at["tp:4", "dyn_power_ratio"] == pytest.approx(dyn[4] / dyn[8], rel=1e-4)
    assert eff.at["tp:2", "tbt_ratio"] == pytest.approx(g.at[2, "token_time"] / g.at[8, "token_time"], rel=1e-4)


@pytest.mark.realdata
def test_power_level_effect_rederives_from_mlperf(shared_data):
    """The measured power level: llama2-70b Offline throughput at a 500 W vs 700 W GPU limit."""
    mp = pd.read_csv(shared_data / "mlperf_inf_v4.1_h200_maxq_power" / "power_summary.csv")
    row = mp[(mp["model"] == "llama2-70b-99") & (mp["scenario"] == "Offline")].iloc[0]
    ratio = row["maxq_Tokens per second"] / row["maxp700w_Tokens per second"]
    level = (500 - 75) / (700 - 75)
    eff = pd.read_csv(EFFECTS).set_index("effect_id")
    assert eff.at["power:llama2-70b:0.68", "throughput_ratio"] == pytest.approx(ratio, rel=1e-4)
    alpha = math.log(ratio) / math.log(level)
    assert eff.at["power:llama2-70b:0.50", "throughput_ratio"] == pytest.approx(0.5 ** alpha, rel=1e-4)
    assert eff.at["power:llama2-70b:0.50", "source"] == "modelled"
    assert eff.at["power:llama2-70b:0.68", "source"] == "derived"


@pytest.mark.realdata
def test_quality_rederives_from_qllm_eval_and_matches_model_card(shared_data):
    """Quality = MMLU (value_second) of the proxy model and precision over the family default;
    the size effect agrees with Meta's model card within 2 points."""
    q = pd.read_csv(shared_data / "qllm_eval_quant_quality" / "qllm_eval_emergent_results_tidy.csv")
    mmlu = q[q["task"] == "mmlu"].set_index(["model", "quant_mode", "config"])["value_second"]
    cat = pd.read_csv(CATALOGUE).set_index("config_id")
    assert cat.at["llama-70b/8b-bf16-tp1x8-b320-p1.00", "quality"] == pytest.approx(
        mmlu[("LLaMA2-7B", "w", "FP16")] / mmlu[("LLaMA2-70B", "w", "FP16")], rel=1e-4)
    assert cat.at["llama-70b/70b-w8a8-tp8x1-b768-p1.00", "quality"] == pytest.approx(
        mmlu[("LLaMA2-70B", "wa", "W8A8")] / mmlu[("LLaMA2-70B", "w", "FP16")], rel=1e-4)
    assert cat.at["mixtral-8x7b/7b-bf16-tp1x8-b320-p1.00", "quality"] == pytest.approx(
        mmlu[("Mistral-7B", "w", "FP16")] / mmlu[("Mixtral-8x7B", "w", "FP16")], rel=1e-4)
    card = pd.read_csv(shared_data / "llama2_official_benchmarks" / "llama_1_2_academic_benchmarks.csv")
    l2 = card[card["family"] == "Llama 2"].set_index("size")["mmlu"]
    assert cat.at["llama-70b/8b-bf16-tp1x8-b320-p1.00", "quality"] == pytest.approx(l2["7B"] / l2["70B"], abs=0.02)


@pytest.mark.realdata
def test_committed_tables_are_what_the_script_builds(shared_data):
    """Re-running models/scripts/build_catalogue.py reproduces the committed tables."""
    configs, effects = _builder().build(shared_data)
    committed = pd.read_csv(CATALOGUE)
    rebuilt = pd.read_csv(pd.io.common.StringIO(configs.to_csv(index=False)))
    pd.testing.assert_frame_equal(rebuilt, committed)
    committed_eff = pd.read_csv(EFFECTS)
    rebuilt_eff = pd.read_csv(pd.io.common.StringIO(effects.to_csv(index=False)))
    pd.testing.assert_frame_equal(rebuilt_eff, committed_eff)


def test_line_numbers_count_a_quoted_cell_over_several_lines(tmp_path):
    """A source_ref with a line break (quoted) made every later problem one line too early."""
    problems = edited_catalogue_problems(tmp_path, {(1, "source_ref"): "measured\nsee the notes",
                                                    (6, "quality"): "5.0"})
    assert [(p.code, p.line) for p in problems if p.column == "quality"] == [("out_of_range", 9)]
