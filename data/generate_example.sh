#!/usr/bin/env bash
# Regenerate the bundled example inventory (data/example) from the seeded generator.
# Outside temperature comes from a real weather file (EnergyPlus TMYx, Leesburg VA, MIT,
# via HewlettPackard/dc-rl) in ../shared/data/weather; the rest from published facts
# (see tapas_opt/generate.py).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf data/example   # generate refuses to replace a folder it did not write (committed files carry no marker)
tapas-opt generate --servers 160 --pending 24 --seed 7 \
  --weather ../shared/data/weather/USA_VA_Leesburg.Exec.epw --out data/example
python - <<'PY'
import yaml, pathlib
p = pathlib.Path("data/example/datacenter.yaml")
cfg = yaml.safe_load(p.read_text())
cfg["name"] = "example-room"
cfg["placement"] = {"time_limit_s": 20}
p.write_text(yaml.safe_dump(cfg, sort_keys=False))
PY
