"""Generate the small simulation demo: an 80-server room and a week of it under every policy.

    python data/simulation/make_scenario.py --data ../shared/data

Writes ``data/simulation/room80/`` (a generated inventory: 2 rows of 40 DGX A100 in one cold
aisle, seed 0, Leesburg VA weather; telemetry and outside temperature as Parquet; the simulator
replaces the telemetry with the real-trace mapping, see docs/simulation.md) and
``data/simulation/room80-week.csv`` (the comparison table of ``tapas-opt simulate`` on it with
every policy, 5-minute steps, the real traces). Re-run after changing the generator or the
simulator; the outputs are small on purpose (no time series).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="../shared/data")
    args = ap.parse_args()
    room = HERE / "room80"
    weather = Path(args.data) / "weather" / "USA_VA_Leesburg.Exec.epw"
    shutil.rmtree(room, ignore_errors=True)  # generate refuses a folder it did not write (committed: no marker)
    subprocess.run(["tapas-opt", "generate", "--servers", "80", "--pending", "30", "--seed", "0", "--format", "parquet",
                    "--weather", str(weather), "--out", str(room)], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "week"
        subprocess.run(["tapas-opt", "simulate", str(room), "--out", str(out), "--traces", args.data, "--policy", "all",
                        "--no-plots", "--quiet"], check=True)
        shutil.copy(out / "comparison.csv", HERE / "room80-week.csv")
    print(f"wrote {room} and {HERE / 'room80-week.csv'}")


if __name__ == "__main__":
    main()
