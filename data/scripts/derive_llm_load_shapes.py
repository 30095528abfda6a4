"""Derive the hour-of-week load shapes of two real LLM services (committed, small).

Source: ../shared/data/azure_llm_2024_minutes/azure2024-llm-minutes.csv (Azure LLM inference
week, per-minute request counts; CC-BY-4.0, cite DynamoLLM, HPCA 2025). Minute 0 is 00:00 UTC
of each service's first day: code Fri 2024-05-10, conversation Sun 2024-05-12.

Output: tapas_opt/data/llm_load_shapes.csv: hour_of_week (0 = Monday 00:00 UTC), code,
conversation: mean requests per minute in that hour, divided by the service's busiest hour.
The room generator drives SaaS endpoints with these real shapes.

Run: python data/scripts/derive_llm_load_shapes.py [path to ../shared/data]
"""

import sys
from pathlib import Path

import pandas as pd

root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "shared" / "data"
src = root / "azure_llm_2024_minutes" / "azure2024-llm-minutes.csv"
df = pd.read_csv(src, comment="#")
out = {}
for col, first_day in (("code_requests", "2024-05-10"), ("conv_requests", "2024-05-12")):
    ts = pd.Timestamp(first_day) + pd.to_timedelta(df["minute"], unit="min")
    how = ts.dt.day_of_week * 24 + ts.dt.hour
    hourly = df[col].groupby(how).mean()
    out["code" if col.startswith("code") else "conversation"] = (hourly / hourly.max()).round(4)
shapes = pd.DataFrame(out).rename_axis("hour_of_week").reset_index()
dest = Path(__file__).resolve().parents[2] / "tapas_opt" / "data" / "llm_load_shapes.csv"
shapes.to_csv(dest, index=False)
print(f"wrote {dest} ({len(shapes)} rows) from {src}")
