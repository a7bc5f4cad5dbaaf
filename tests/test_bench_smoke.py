"""The benchmark harness, run on one tiny load so it cannot rot (benchmarks are not part of the tests).

One short round of round trips against the bridge on asyncio and on trio, plus the dispatch cost
with 1 and 5 plugins: it starts real server processes and a real load client, so a change that
breaks the harness (or the public API it uses) fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_harness_writes_positive_figures(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "roundtrip,isolation",
         "--targets", "bridge-asyncio,bridge-trio,websockets", "--sessions", "2", "--rounds", "1",
         "--duration", "0.2", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())

    assert results["machine"]["cores"] >= 1
    assert results["machine"]["versions"]["websockets"]
    trips = results["round_trips"]["sessions_2"]
    assert set(trips) == {"bridge-asyncio", "bridge-trio", "websockets"}
    for figures in trips.values():
        assert figures["messages"] > 0
        assert figures["msgs_per_s"] > 0
        assert 0 < figures["p50_us"] <= figures["p99_us"]
    ratio = results["ratios"]["sessions_2"]["bridge-trio/websockets"]
    assert ratio["throughput"] > 0 and ratio["p99"] > 0
    for backend in ("asyncio", "trio"):
        assert results["isolation"][backend]["ratio_p50"] > 0
    assert any(check["target"].startswith("isolation") for check in results["checks"])
    assert "| bridge-asyncio" in done.stdout  # the table was printed
