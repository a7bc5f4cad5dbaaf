"""The targets from the issue checked against the results, and the results as Markdown tables.

The same tables are printed on the terminal and pasted into `docs/performance.md`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BACKENDS = ("asyncio", "trio")


def _check(target: str, value: float | None, limit: float, *, at_most: bool, unit: str = "",
           note: str = "") -> dict[str, Any]:
    met = None if value is None else (value <= limit if at_most else value >= limit)
    return {"target": target, "value": value, "limit": limit, "unit": unit,
            "comparison": "<=" if at_most else ">=", "met": met, "note": note}


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue, with the measured figure and whether it is met."""
    found: list[dict[str, Any]] = []
    ratios = results.get("ratios", {})
    for backend in BACKENDS:
        pair = ratios.get("sessions_50", {}).get(f"bridge-{backend}/node-ws")
        if pair is not None or "node_ws_peer" in results:
            found.append(_check(f"throughput at 50 sessions vs Node ws ({backend})",
                                pair["throughput"] if pair else None, 1.0, at_most=False, unit="x",
                                note=results.get("node_ws_peer", "")))
    for key, pairs in ratios.items():
        for backend in BACKENDS:
            pair = pairs.get(f"bridge-{backend}/websockets")
            if pair is not None:
                sessions = key.removeprefix("sessions_")
                found.append(_check(f"p99 round trip vs websockets, {sessions} session(s) ({backend})",
                                    pair["p99"], 1.5, at_most=True, unit="x"))
    dispatch = results.get("dispatch", {})
    for backend in BACKENDS:
        counts = dispatch.get(backend, {})
        if counts:
            largest = max(counts, key=lambda key: int(key.removeprefix("plugins_")))
            found.append(_check(f"dispatch overhead per plugin per command ({backend})",
                                counts[largest].get("overhead_us_per_plugin"), 50, at_most=True,
                                unit="us", note=f"from {largest.replace('_', ' ')}, server CPU"))
    scale = results.get("scale", {})
    for backend in BACKENDS:
        figures = scale.get(f"bridge-{backend}")
        if figures:
            sessions = scale["sessions"]
            value, note = figures["rss_total_mb"], ""
            if sessions != 1000:
                value = figures["rss_baseline_mb"] + figures["kb_per_session"] * 1000 / 1024
                note = f"extrapolated from {sessions} sessions"
            found.append(_check(f"RSS with 1,000 idle sessions ({backend})", value, 60, at_most=True,
                                unit="MB", note=note))
    startup = results.get("startup")
    if startup:
        found.append(_check("start-up to listening (cris-connect serve)",
                            startup["serve_to_listening_ms"], 400, at_most=True, unit="ms",
                            note=f"bare Python listening: {startup['python_listening_floor_ms']:.0f} ms"))
    isolation = results.get("isolation", {})
    for backend in BACKENDS:
        if backend in isolation:
            found.append(_check(f"isolation: p50 with a 5 s sibling / without ({backend})",
                                isolation[backend]["ratio_p50"], 1.2, at_most=True, unit="x"))
    return found


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
             for row in (header, *rows)]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    """Every figure as Markdown tables (they read well on a terminal too)."""
    out: list[str] = []
    m = results["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in m["versions"].items() if version)
    out.append(f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mb']} MB, Python {m['python']}; "
               f"{versions}; commit {m['commit']}; {'quick' if results['settings']['quick'] else 'full'} "
               f"run, {results.get('elapsed_s', '?')} s")

    round_trips = results.get("round_trips")
    if round_trips:
        rows = []
        for key, per_target in round_trips.items():
            for name, f in per_target.items():
                rows.append([name, key.removeprefix("sessions_"), _number(f["msgs_per_s"]),
                             _number(f["p50_us"]), _number(f["p99_us"]),
                             _number(f["server_cpu_us_per_msg"], 1)])
        out += ["", "Round trips (EVENT -> DISPLAY), medians of interleaved rounds",
                _table(["target", "sessions", "msgs/s", "p50 us", "p99 us", "server CPU us/msg"], rows)]
        rows = []
        for key, pairs in results.get("ratios", {}).items():
            for pair, f in pairs.items():
                rows.append([pair, key.removeprefix("sessions_"), _number(f["throughput"], 2),
                             _number(f["p50"], 2), _number(f["p99"], 2), _number(f.get("server_cpu"), 2)])
        out += ["", "Ratios, bridge / peer (median of per-round ratios; throughput: higher is better, "
                "latency and CPU per message: lower is better)",
                _table(["bridge / peer", "sessions", "throughput", "p50", "p99", "server CPU/msg"], rows)]

    dispatch = results.get("dispatch")
    if dispatch:
        rows = []
        for backend in BACKENDS:
            for key, f in dispatch.get(backend, {}).items():
                rows.append([backend, key.removeprefix("plugins_"), _number(f["msgs_per_s"]),
                             _number(f["server_cpu_us_per_msg"], 1),
                             _number(f.get("overhead_us_per_plugin"), 1)])
        out += ["", f"Dispatch cost ({dispatch['sessions']} sessions; every plugin implements on_event)",
                _table(["backend", "plugins", "msgs/s", "server CPU us/cmd", "overhead us/plugin/cmd"],
                       rows)]

    isolation = results.get("isolation")
    if isolation:
        rows = []
        for backend in BACKENDS:
            if backend in isolation:
                f = isolation[backend]
                rows.append([backend, _number(f["alone"]["p50_us"]), _number(f["with_sleeper"]["p50_us"]),
                             _number(f["ratio_p50"], 2), _number(f["alone"]["p99_us"]),
                             _number(f["with_sleeper"]["p99_us"]), _number(f["ratio_p99"], 2)])
        out += ["", "Isolation (1 session; a sibling plugin sleeps 5 s on every command)",
                _table(["backend", "p50 alone us", "p50 with sleeper us", "ratio", "p99 alone us",
                        "p99 with sleeper us", "ratio p99"], rows)]

    scale = results.get("scale")
    if scale:
        rows = []
        for name, f in scale.items():
            if isinstance(f, dict):
                rows.append([name, _number(f["handshakes_per_s"]), _number(f["rss_baseline_mb"], 1),
                             _number(f["rss_total_mb"], 1), _number(f["kb_per_session"], 1),
                             str(f["still_open"])])
        out += ["", f"Scale ({scale['sessions']} idle sessions; handshakes {scale['concurrency']} in flight)",
                _table(["target", "handshakes/s", "RSS before MB", "RSS with sessions MB", "KB/session",
                        "still open"], rows)]

    startup = results.get("startup")
    if startup:
        rows = [["`" + startup["command"] + "` to accepting connections",
                 _number(startup["serve_to_listening_ms"])],
                ["bare Python to listening (floor)", _number(startup["python_listening_floor_ms"])],
                ["`import cris_connect`", _number(startup["import_cris_connect_ms"], 1)]]
        out += ["", "Start-up (medians)", _table(["figure", "ms"], rows)]

    adapters = results.get("adapters")
    if adapters:
        rows = []
        for name, f in adapters.items():
            if isinstance(f, str):
                value = f
            elif "summary" in f:
                value = f["summary"]
            else:
                value = f"p50 {f['p50_us']:,.0f} us, p99 {f['p99_us']:,.0f} us"
            rows.append([name, value])
        out += ["", "Adapters", _table(["figure", "value"], rows)]

    found = results.get("checks")
    if found:
        rows = []
        for c in found:
            met = "n/a" if c["met"] is None else ("met" if c["met"] else "MISSED")
            value = _number(c["value"], 2 if c["unit"] == "x" else 1)
            rows.append([c["target"], f"{value} {c['unit']}".strip(),
                         f"{c['comparison']} {c['limit']:g} {c['unit']}".strip(), met, c["note"]])
        out += ["", "Targets (issue 8)", _table(["target", "measured", "limit", "result", "note"], rows)]
    return "\n".join(out)
