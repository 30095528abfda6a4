"""Build the LLM configuration catalogue of SaaS reconfiguration from real measurements.

Reads ``../shared/data`` (never copied into the repository) and writes two small derived
tables beside this script's parent:

* ``models/catalogue/knob_effects.csv``: every knob effect (precision, tensor parallelism, GPU
  power level) as ratios, each with the source rows it was computed from;
* ``models/catalogue/llm_configs.csv``: one row per configuration of every SaaS model family
  (model size x precision x tensor parallelism x GPU power level x batch size) with power,
  throughput, latency and quality, each row naming its base measurement and the effects applied.

Reference hardware is the A100 (the TAPAS paper's DGX A100). The sources, and what each gives:

* ``mlenergy_v2`` (A100-SXM4-40GB rows, task ``chat``): measured GPU power, output token
  throughput and time per output token of each model at each batch cap (vLLM). These are the
  base rows: ``source=measured``.
* ``mlenergy_v3`` (H100, task ``lm-arena-chat``): Qwen3-235B-A22B-Instruct-2507 in bf16 and FP8 on
  8 GPUs at the same batch caps: the only same-model, same-GPU-count precision pair. Its median
  ratios give the effect of 8-bit weights and activations (``w8a8``).
* ``splitwise_perf_model`` (A100-80GB, Llama2-70B, prompt 512, 128 tokens, batch 16: the largest
  batch with power columns): throughput, per-GPU power (fraction of the 400 W TDP) and token time
  at TP8, TP4 and TP2, one instance per server (the paper's knob: fewer GPUs, hotter ones).
* ``mlperf_inf_v4.1_h200_maxq_power``: throughput with the GPU power limit at 500 W vs 700 W
  (gptj: 350 W). Fitted as ``throughput ratio = (dynamic power ratio) ** alpha``; the measured
  level (0.68 of the dynamic power) is ``source=derived``, the other levels of the GPU clock /
  power sweep are ``source=modelled`` from the same exponent (no public per-frequency sweep
  exists; TAPAS.md section 4: clocks 800-1980 MHz, lower clocks lower power and performance).
* ``qllm_eval_quant_quality`` (MMLU, ``value_second`` as in the source's plots): quality of each
  model size and precision. Llama-3.1 models use the LLaMA2 model of the same size as a proxy
  (the only Llama sizes with quantised scores); ``llama2_official_benchmarks`` cross-checks the
  size effect (tests/test_catalogue.py).

Knob effects are applied multiplicatively to a measured base row (an assumption, stated in
docs/reconfiguration.md). A row with any derived effect is ``derived``; with a modelled power
level it is ``modelled``.

Run: python models/scripts/build_catalogue.py [path to ../shared/data]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "models" / "catalogue"

A100_IDLE_W = 50.0
"""Idle power of one A100: 8 A100 GPUs idle at about 0.4 kW (TAPAS.md section 1)."""
A100_TDP_W = 400.0
"""A100 TDP: 8 GPUs about 3.2 kW (TAPAS.md section 1); splitwise power columns are fractions of it."""
H100_IDLE_W = 75.0
"""Idle power of one H100/H200 (splitwise_perf_model/power_model_constant.yaml, idle_power)."""
SLO_FACTOR = 5.0
"""TAPAS.md section 4: TTFT and TBT within 5x the unloaded latency."""
MEASURED_CAP_W, UNCAPPED_W = 500.0, 700.0
"""MLPerf v4.1 H200 MaxQ: GPU power limit 500 W (llama2-70b, mixtral) vs 700 W MaxP."""
MODELLED_LEVELS = (1.0, 0.9, 0.8, 0.6, 0.5)
"""Dynamic-power levels of the GPU clock / power knob besides the measured one."""

V2_FILE = "mlenergy_v2/mlenergy_v2_llm_configs.csv"
V3_FILE = "mlenergy_v3/mlenergy_v3_llm_configs.csv"
SW_FILE = "splitwise_perf_model/perf_model.csv"
MLPERF_FILE = "mlperf_inf_v4.1_h200_maxq_power/power_summary.csv"
QLLM_FILE = "qllm_eval_quant_quality/qllm_eval_emergent_results_tidy.csv"
V2_GPU = "A100-SXM4-40GB"

FAMILIES = [
    {"family": "llama-70b",
     "models": [("70b", "meta-llama/Meta-Llama-3.1-70B-Instruct", 70.0, 8, 1, "LLaMA2-70B"),
                ("8b", "meta-llama/Meta-Llama-3.1-8B-Instruct", 8.0, 1, 8, "LLaMA2-7B")],
     "tp_variants": (4, 2), "cap_model": "llama2-70b"},
    {"family": "mixtral-8x7b",
     "models": [("8x7b", "mistralai/Mixtral-8x7B-Instruct-v0.1", 46.7, 4, 2, "Mixtral-8x7B"),
                ("7b", "mistralai/Mistral-7B-Instruct-v0.3", 7.2, 1, 8, "Mistral-7B")],
     "tp_variants": (), "cap_model": "mixtral-8x7b"},
    {"family": "llama-8b",
     "models": [("8b", "meta-llama/Meta-Llama-3.1-8B-Instruct", 8.0, 1, 8, "LLaMA2-7B")],
     "tp_variants": (), "cap_model": "llama2-70b"},
]
"""SaaS model families: (size label, measured model, parameters in billions, TP, instances per
8-GPU server, quality proxy in qllm-eval). The first model is the family's default."""

PRECISIONS = {"bf16": ("w", "FP16"), "w8a8": ("wa", "W8A8")}
"""Precision -> (qllm-eval quant_mode, config) of its quality score."""


def _sig(x: float, digits: int = 5) -> float:
    """Round to significant digits: the tables stay small and byte-stable."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def v2_base_rows(data: Path, model: str, tp: int) -> pd.DataFrame:
    """Measured A100 rows of one model at one TP: batch cap, GPU power, throughput, TPOT."""
    df = pd.read_csv(data / V2_FILE)
    sel = df[(df["task"] == "chat") & (df["gpu_dir"] == V2_GPU) & (df["Model"] == model)
             & (df["TP"] == tp) & (df["PP"] == 1)]
    if sel.empty:
        raise SystemExit(f"no {V2_GPU} rows for {model} TP{tp} in {V2_FILE}")
    return sel.sort_values("Max BS (reqs)").reset_index(drop=True)


def precision_effect(data: Path) -> dict:
    """w8a8 vs bf16: median ratios over the batch caps measured for both (mlenergy_v3, H100)."""
    df = pd.read_csv(data / V3_FILE)
    base = "Qwen/Qwen3-235B-A22B-Instruct-2507"
    keys = ["max_num_seqs"]
    sel = df[(df["gpu_model"] == "H100") & (df["task"] == "lm-arena-chat") & (df["num_gpus"] == 8)]
    bf = sel[sel["model_id"] == base].set_index(keys)
    fp = sel[sel["model_id"] == base + "-FP8"].set_index(keys)
    both = bf.index.intersection(fp.index)

    def dyn(frame):
        return frame["avg_power_watts"] - frame["num_gpus"] * H100_IDLE_W

    tput = fp.loc[both, "output_throughput_tokens_per_sec"] / bf.loc[both, "output_throughput_tokens_per_sec"]
    power = dyn(fp.loc[both]) / dyn(bf.loc[both])
    tbt = fp.loc[both, "median_itl_ms"] / bf.loc[both, "median_itl_ms"]
    ref = (f"{V3_FILE}[gpu_model=H100,task=lm-arena-chat,num_gpus=8,model_id={base} vs {base}-FP8,"
           f"max_num_seqs={'/'.join(str(int(b)) for b in both)}]")
    return {"effect_id": "precision:w8a8", "knob": "precision", "value": "w8a8",
            "throughput_ratio": float(np.median(tput)), "dyn_power_ratio": float(np.median(power)),
            "tbt_ratio": float(np.median(tbt)), "gpus_ratio": 1.0, "source": "derived",
            "source_ref": ref,
            "note": f"median over {len(both)} batch caps; dynamic power = GPU power - {H100_IDLE_W:g} W idle per GPU"}


def tp_effects(data: Path, variants: tuple[int, ...]) -> list[dict]:
    """One Llama2-70B instance at TP k vs TP8 on A100-80GB (splitwise, batch 16, 512/128 tokens)."""
    df = pd.read_csv(data / SW_FILE)
    sel = df[(df["model"] == "llama2-70b") & (df["hardware"] == "a100-80gb") & (df["prompt_size"] == 512)
             & (df["token_size"] == 128) & (df["batch_size"] == 16)]
    g = sel.groupby("tensor_parallel").agg(e2e=("e2e_time", "mean"), token=("token_time", "mean"),
                                           prompt=("prompt_time", "mean"), power=("average_power", "mean"))
    g["tput"] = 16 * 128 / g["e2e"]                       # tokens per ms of the whole request
    g["dyn"] = (g["power"] * A100_TDP_W - A100_IDLE_W) * g.index  # W above idle, all active GPUs
    out = []
    for k in variants:
        ref = (f"{SW_FILE}[model=llama2-70b,hardware=a100-80gb,prompt_size=512,token_size=128,"
               f"batch_size=16,tensor_parallel={k} vs 8]")
        out.append({"effect_id": f"tp:{k}", "knob": "tp", "value": str(k),
                    "throughput_ratio": float(g.at[k, "tput"] / g.at[8, "tput"]),
                    "dyn_power_ratio": float(g.at[k, "dyn"] / g.at[8, "dyn"]),
                    "tbt_ratio": float(g.at[k, "token"] / g.at[8, "token"]),
                    "gpus_ratio": k / 8, "source": "derived", "source_ref": ref,
                    "note": (f"one instance per server; TTFT ratio {g.at[k, 'prompt'] / g.at[8, 'prompt']:.3f}; "
                             f"power = average_power x {A100_TDP_W:g} W")})
    return out


def cap_exponents(data: Path) -> pd.DataFrame:
    """alpha per MLPerf model and scenario: throughput ratio = (dynamic power ratio) ** alpha."""
    df = pd.read_csv(data / MLPERF_FILE)
    rows = []
    for rec in df.to_dict("records"):
        if pd.notna(rec["maxq_Tokens per second"]) and pd.notna(rec["maxp700w_Tokens per second"]):
            ratio = rec["maxq_Tokens per second"] / rec["maxp700w_Tokens per second"]
        elif pd.notna(rec["maxq_Completed tokens per second"]) and pd.notna(rec["maxp700w_Completed tokens per second"]):
            ratio = rec["maxq_Completed tokens per second"] / rec["maxp700w_Completed tokens per second"]
        elif pd.notna(rec["maxq_Samples per second"]):
            ratio = rec["maxq_Samples per second"] / rec["maxp700w_Samples per second"]
        else:
            ratio = rec["maxq_Completed samples per second"] / rec["maxp700w_Completed samples per second"]
        level = (rec["gpu_power_limit_w"] - H100_IDLE_W) / (UNCAPPED_W - H100_IDLE_W)
        rows.append({"model": rec["model"].replace("-99", ""), "scenario": rec["scenario"],
                     "cap_w": rec["gpu_power_limit_w"], "dyn_level": level, "throughput_ratio": ratio,
                     "alpha": math.log(ratio) / math.log(level)})
    return pd.DataFrame(rows)


def power_effects(data: Path, cap_model: str) -> list[dict]:
    """GPU power levels: the measured MLPerf point (derived) and the modelled sweep."""
    caps = cap_exponents(data)
    row = caps[(caps["model"] == cap_model) & (caps["scenario"] == "Offline")].iloc[0]
    alpha = float(row["alpha"])
    ref = f"{MLPERF_FILE}[model={cap_model}-99,scenario=Offline]"
    out = []
    levels = sorted({*MODELLED_LEVELS, _sig(float(row["dyn_level"]), 3)}, reverse=True)
    for level in levels:
        measured = abs(level - row["dyn_level"]) < 0.01
        tput = float(row["throughput_ratio"]) if measured else level ** alpha
        out.append({"effect_id": f"power:{cap_model}:{level:.2f}", "knob": "power_level", "value": f"{level:.2f}",
                    "throughput_ratio": tput, "dyn_power_ratio": level, "tbt_ratio": 1.0 / tput,
                    "gpus_ratio": 1.0, "source": "derived" if measured or level == 1.0 else "modelled",
                    "source_ref": ref,
                    "note": (f"alpha = ln(throughput ratio) / ln(dynamic power ratio) = {alpha:.4f}; dynamic power "
                             f"= limit - {H100_IDLE_W:g} W idle; {MEASURED_CAP_W:g} W of {UNCAPPED_W:g} W measured")})
    return out


def iaas_cap_effect(data: Path) -> dict:
    """The exponent used for IaaS power capping: median over every MLPerf model and scenario."""
    caps = cap_exponents(data)
    return {"effect_id": "iaas_cap_alpha", "knob": "iaas_cap", "value": f"{caps['alpha'].median():.4f}",
            "throughput_ratio": float("nan"), "dyn_power_ratio": float("nan"), "tbt_ratio": float("nan"),
            "gpus_ratio": 1.0, "source": "derived", "source_ref": f"{MLPERF_FILE}[all rows]",
            "note": "median alpha over " + ", ".join(f"{m}/{s}={a:.3f}" for m, s, a in
                                                       caps[["model", "scenario", "alpha"]].itertuples(index=False))}


def quality_scores(data: Path) -> pd.DataFrame:
    """MMLU (value_second) by qllm-eval model and (quant_mode, config)."""
    df = pd.read_csv(data / QLLM_FILE)
    return df[df["task"] == "mmlu"].set_index(["model", "quant_mode", "config"])["value_second"]


def build(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables, deterministic for the same inputs."""
    quality = quality_scores(data)
    prec = precision_effect(data)
    effects = [prec, iaas_cap_effect(data)]
    rows = []
    for fam in FAMILIES:
        family = fam["family"]
        tps = tp_effects(data, fam["tp_variants"])
        powers = power_effects(data, fam["cap_model"])
        effects += [e for e in tps + powers if e["effect_id"] not in {x["effect_id"] for x in effects}]
        size0, model0, _, tp0, rep0, proxy0 = fam["models"][0]
        base0 = v2_base_rows(data, model0, tp0)
        slo_tbt_ms = SLO_FACTOR * 1000.0 * float(base0["Avg TPOT (s)"].iloc[0])
        q_ref = float(quality[(proxy0, "w", "FP16")])
        for size, model, params_b, tp, replicas, proxy in fam["models"]:
            base = v2_base_rows(data, model, tp)
            tp_opts = [None] + (tps if size == size0 else [])
            for b in base.to_dict("records"):
                batch = int(b["Max BS (reqs)"])
                power_w = float(b["derived_avg_power_w_total"]) * replicas
                dyn_w = power_w - tp * replicas * A100_IDLE_W
                tput = float(b["Token tput (tok/s)"]) * replicas
                tbt = 1000.0 * float(b["Avg TPOT (s)"])
                base_ref = (f"{V2_FILE}[task=chat,gpu_dir={V2_GPU},Model={model},TP={tp},PP=1,"
                            f"Max BS (reqs)={batch}]")
                for precision, (mode, cfg) in PRECISIONS.items():
                    q = float(quality[(proxy, mode, cfg)]) / q_ref
                    q_ref_text = f"{QLLM_FILE}[task=mmlu,model={proxy},quant_mode={mode},config={cfg}]/[model={proxy0},quant_mode=w,config=FP16]"
                    for tpe in tp_opts:
                        for pe in powers:
                            applied = ([prec] if precision != "bf16" else []) + ([tpe] if tpe else []) + [pe]
                            t_ratio = float(np.prod([e["throughput_ratio"] for e in applied]))
                            d_ratio = float(np.prod([e["dyn_power_ratio"] for e in applied]))
                            l_ratio = float(np.prod([e["tbt_ratio"] for e in applied]))
                            gpus = int(round(tp * replicas * (tpe["gpus_ratio"] if tpe else 1.0)))
                            tp_c = int(tpe["value"]) if tpe else tp
                            c_power = gpus * A100_IDLE_W + dyn_w * d_ratio
                            level = float(pe["value"])
                            srcs = {e["source"] for e in applied if not (e["knob"] == "power_level" and level == 1.0)}
                            source = "modelled" if "modelled" in srcs else "derived" if srcs else "measured"
                            c_tbt = tbt * l_ratio
                            rows.append({
                                "family": family,
                                "config_id": f"{family}/{size}-{precision}-tp{tp_c}x{replicas}-b{batch}-p{level:.2f}",
                                "model": model.split("/")[-1], "size": size, "params_b": params_b,
                                "precision": precision, "tp": tp_c, "replicas": replicas, "gpus_used": gpus,
                                "max_batch": batch, "power_level": level,
                                "power_w": _sig(c_power), "gpu_power_w": _sig(c_power / gpus),
                                "idle_gpu_w": A100_IDLE_W, "throughput_tok_s": _sig(tput * t_ratio),
                                "tbt_ms": _sig(c_tbt), "slo_tbt_ms": _sig(slo_tbt_ms),
                                "slo_ok": bool(c_tbt <= slo_tbt_ms * (1 + 1e-9)),
                                "quality": _sig(min(q, 1.0)),
                                "gpu": "A100", "source": source, "source_ref": base_ref,
                                "effects": "|".join(e["effect_id"] for e in applied),
                                "quality_ref": q_ref_text,
                            })
    configs = pd.DataFrame(rows)
    configs["is_default"] = False
    for family, grp in configs.groupby("family", sort=False):
        size0 = next(f for f in FAMILIES if f["family"] == family)["models"][0][0]
        cand = grp[(grp["size"] == size0) & (grp["precision"] == "bf16") & (grp["power_level"] == 1.0)
                   & grp["slo_ok"] & ~grp["effects"].str.contains("tp:")]
        configs.loc[cand["throughput_tok_s"].idxmax(), "is_default"] = True
    effects_df = pd.DataFrame(effects)
    for col in ("throughput_ratio", "dyn_power_ratio", "tbt_ratio", "gpus_ratio"):
        effects_df[col] = effects_df[col].map(lambda x: _sig(float(x), 6))
    return configs, effects_df


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data"
    configs, effects = build(data)
    OUT.mkdir(parents=True, exist_ok=True)
    configs.to_csv(OUT / "llm_configs.csv", index=False)
    effects.to_csv(OUT / "knob_effects.csv", index=False)
    print(f"wrote {OUT / 'llm_configs.csv'} ({len(configs)} configurations, "
          f"{configs['family'].nunique()} families) and {OUT / 'knob_effects.csv'} ({len(effects)} effects) from {data}")


if __name__ == "__main__":
    main()
