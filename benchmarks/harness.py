"""Run every measurement, interleaved, and write `benchmarks/results/latest.json` and the table.

These machines are noisy, so no figure is one absolute time: targets run in turn (A B C D A B C D
...) within one invocation, each figure is the median over those rounds, and each ratio is the
median of per-round ratios (a round's bridge run against the same round's peer run).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs

from benchmarks import machine, report, targets
from benchmarks.targets import PYTHON, ROOT, Running, Target

ORTHANC, NGINX, CHROMIUM = "/usr/sbin/Orthanc", "/usr/sbin/nginx", "/usr/bin/chromium"


def _adapter_script(command: list[str], *, timeout: float, summary: Callable[[dict[str, Any]], str],
                    stdout_json: bool = False, json_file: Path | None = None,
                    pick: Callable[[Any], dict[str, Any]] = lambda data: data) -> dict[str, Any] | str:
    """Run an adapter's own measuring script; its figures, or why there are none."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        return f"not measured: {Path(command[1]).name} did not finish within {timeout:g} s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"not measured: {Path(command[1]).name} failed ({last[:200]})"
    try:
        figures = pick(json.loads(done.stdout if stdout_json else json_file.read_text()))  # type: ignore[union-attr]
    except (ValueError, OSError, KeyError, TypeError) as exc:
        return f"not measured: {Path(command[1]).name} gave no figures ({exc})"
    return {**figures, "summary": summary(figures)}

SECTIONS = ("roundtrip", "dispatch", "isolation", "scale", "startup", "adapters")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


@attrs.frozen
class Settings:
    quick: bool = False
    rounds: int = 5
    duration: float = 1.5
    warmup: float = 0.3
    sessions: tuple[int, ...] = (1, 50)
    dispatch_rounds: int = 4
    dispatch_duration: float = 1.0
    plugin_counts: tuple[int, ...] = (1, 5, 20)
    isolation_rounds: int = 4
    isolation_duration: float = 1.0
    idle_sessions: int = 1000
    handshake_concurrency: int = 50
    scale_rounds: int = 2
    startup_runs: int = 10
    import_runs: int = 10
    filedrop_count: int = 50

    @classmethod
    def for_quick(cls) -> Settings:
        return cls(quick=True, rounds=2, duration=0.4, warmup=0.15, dispatch_rounds=2,
                   dispatch_duration=0.4, isolation_rounds=2, isolation_duration=0.4,
                   idle_sessions=200, scale_rounds=1, startup_runs=3, import_runs=3, filedrop_count=10)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def interleaved(
    running: Sequence[Running], loads: Sequence[Sequence[str]], rounds: int, log: Callable[[str], None]
) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Run each load against each target in turn, `rounds` times: A B C A B C ..."""
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for round_number in range(rounds):
        for load_index, load in enumerate(loads):
            for server in running:
                result = targets.run_load("roundtrip", server, *load, "--server-pid", str(server.pid))
                results.setdefault((server.target.name, load_index), []).append(result)
        log(f"  round {round_number + 1}/{rounds} done")
    return results


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over rounds of each figure, keeping the rounds for the record."""
    figures = ("msgs_per_s", "p50_us", "p99_us", "server_cpu_us_per_msg")
    summary: dict[str, Any] = {}
    for figure in figures:
        values = [run[figure] for run in runs if run.get(figure) is not None]
        summary[figure] = median(values) if values else None
    summary["messages"] = sum(run["messages"] for run in runs)
    summary["rounds"] = [{figure: run.get(figure) for figure in figures} for run in runs]
    return summary


def paired_ratio(numerator: list[dict[str, Any]], denominator: list[dict[str, Any]], figure: str) -> float:
    """Median of per-round ratios: each round's pair ran back to back, under the same noise."""
    return median([a[figure] / b[figure] for a, b in zip(numerator, denominator, strict=True)])


class Harness:
    def __init__(self, settings: Settings, *, only: Sequence[str], target_names: Sequence[str] | None,
                 log: Callable[[str], None]) -> None:
        self.settings = settings
        self.only = only
        self.target_names = target_names
        self.log = log
        self.results: dict[str, Any] = {}
        self.node_missing = targets.node_peer_unavailable()

    def comparison_targets(self) -> list[Target]:
        chosen = [targets.bridge("asyncio"), targets.bridge("trio"), targets.WEBSOCKETS]
        if self.node_missing is None:
            chosen.append(targets.NODE_WS)
        if self.target_names:
            chosen = [t for t in chosen if t.name in self.target_names]
        return chosen

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.results = {
            "machine": machine.describe(),
            "settings": attrs.asdict(self.settings),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if self.node_missing is not None:
            self.results["node_ws_peer"] = f"not measured: {self.node_missing}"
        for section in SECTIONS:
            if section in self.only:
                section_started = time.perf_counter()
                self.log(f"{section}...")
                getattr(self, section)()
                self.log(f"{section}: {time.perf_counter() - section_started:.1f} s")
        self.results["checks"] = report.checks(self.results)
        self.results["elapsed_s"] = round(time.perf_counter() - started, 1)
        return self.results

    # Round trips: the bridge against the peers that do the same job.

    def roundtrip(self) -> None:
        s = self.settings
        chosen = self.comparison_targets()
        loads = [("--sessions", str(n), "--duration", str(s.duration), "--warmup", str(s.warmup))
                 for n in s.sessions]
        with ExitStack() as stack:
            running = [stack.enter_context(targets.started(t)) for t in chosen]
            runs = interleaved(running, loads, s.rounds, self.log)
        section: dict[str, Any] = {}
        ratios: dict[str, Any] = {}
        for load_index, sessions in enumerate(s.sessions):
            key = f"sessions_{sessions}"
            section[key] = {t.name: summarise(runs[(t.name, load_index)]) for t in chosen}
            for bridge in (t for t in chosen if t.bridge):
                for peer in (t for t in chosen if not t.bridge):
                    a, b = runs[(bridge.name, load_index)], runs[(peer.name, load_index)]
                    ratios.setdefault(key, {})[f"{bridge.name}/{peer.name}"] = {
                        "throughput": paired_ratio(a, b, "msgs_per_s"),
                        "p50": paired_ratio(a, b, "p50_us"),
                        "p99": paired_ratio(a, b, "p99_us"),
                        "server_cpu": paired_ratio(a, b, "server_cpu_us_per_msg"),
                    }
        self.results["round_trips"] = section
        self.results["ratios"] = ratios

    # Dispatch: what each further plugin costs per command.

    def dispatch(self) -> None:
        s = self.settings
        backends = [b for b in ("asyncio", "trio")
                    if not self.target_names or f"bridge-{b}" in self.target_names]
        chosen = [targets.bridge(backend, plugins=count, name=f"{backend}-{count}")
                  for backend in backends for count in s.plugin_counts]
        sessions = max(s.sessions)
        load = ("--sessions", str(sessions), "--duration", str(s.dispatch_duration),
                "--warmup", str(s.warmup))
        with ExitStack() as stack:
            running = [stack.enter_context(targets.started(t)) for t in chosen]
            runs = interleaved(running, [load], s.dispatch_rounds, self.log)
        section: dict[str, Any] = {"sessions": sessions}
        base_count = s.plugin_counts[0]
        for backend in backends:
            per_backend: dict[str, Any] = {}
            base = runs[(f"{backend}-{base_count}", 0)]
            for count in s.plugin_counts:
                these = runs[(f"{backend}-{count}", 0)]
                figures = summarise(these)
                if count != base_count:
                    # Paired per round: (CPU per command with N plugins - with 1) / (N - 1).
                    figures["overhead_us_per_plugin"] = median([
                        (a["server_cpu_us_per_msg"] - b["server_cpu_us_per_msg"]) / (count - base_count)
                        for a, b in zip(these, base, strict=True)
                    ])
                per_backend[f"plugins_{count}"] = figures
            section[backend] = per_backend
        self.results["dispatch"] = section

    # Isolation: a sibling that sleeps 5 s per command must not slow the fast plugin.

    def isolation(self) -> None:
        s = self.settings
        backends = [b for b in ("asyncio", "trio")
                    if not self.target_names or f"bridge-{b}" in self.target_names]
        chosen = []
        for backend in backends:
            chosen += [targets.bridge(backend, name=f"{backend}-alone"),
                       targets.bridge(backend, sleeper=True, name=f"{backend}-with-sleeper")]
        load = ("--sessions", "1", "--duration", str(s.isolation_duration), "--warmup", str(s.warmup))
        with ExitStack() as stack:
            running = [stack.enter_context(targets.started(t)) for t in chosen]
            runs = interleaved(running, [load], s.isolation_rounds, self.log)
        section: dict[str, Any] = {"sessions": 1}
        for backend in backends:
            alone, slowed = runs[(f"{backend}-alone", 0)], runs[(f"{backend}-with-sleeper", 0)]
            section[backend] = {
                "alone": summarise(alone),
                "with_sleeper": summarise(slowed),
                "ratio_p50": paired_ratio(slowed, alone, "p50_us"),
                "ratio_p99": paired_ratio(slowed, alone, "p99_us"),
            }
        self.results["isolation"] = section

    # Scale: memory with many idle sessions, and how fast handshakes are accepted.

    def scale(self) -> None:
        s = self.settings
        chosen = [targets.bridge(t.name.removeprefix("bridge-"), max_sessions=s.idle_sessions + 100)
                  if t.bridge else t for t in self.comparison_targets()]
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(s.scale_rounds):
            for target in chosen:  # a fresh server each time: memory once freed is not given back
                with targets.started(target) as server:
                    baseline = server.rss_kb()
                    with targets.idle_sessions(server, s.idle_sessions, s.handshake_concurrency) as idle:
                        time.sleep(1.0)  # let the server settle (keepalive tasks, allocator)
                        loaded = server.rss_kb()
                    runs.setdefault(target.name, []).append({
                        "handshakes_per_s": idle["handshakes_per_s"],
                        "rss_baseline_mb": baseline / 1024,
                        "rss_total_mb": loaded / 1024,
                        "kb_per_session": (loaded - baseline) / s.idle_sessions,
                        "still_open": idle.get("still_open"),
                    })
        section: dict[str, Any] = {"sessions": s.idle_sessions, "concurrency": s.handshake_concurrency}
        for name, these in runs.items():
            section[name] = {figure: median([run[figure] for run in these])
                             for figure in ("handshakes_per_s", "rss_baseline_mb", "rss_total_mb",
                                            "kb_per_session")}
            section[name]["still_open"] = min(run["still_open"] for run in these)
            section[name]["rounds"] = these
        self.results["scale"] = section

    # Start-up: process start to accepting connections, and the import alone.

    def startup(self) -> None:
        s = self.settings
        script = Path(PYTHON).parent / "cris-connect"
        serve = [str(script)] if script.exists() else [PYTHON, "-m", "cris_connect"]
        floor = [PYTHON, "-c", "import socket, sys, time\n"
                 "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\ntime.sleep(60)"]
        serve_ms, floor_ms = [], []
        for _ in range(s.startup_runs):  # interleaved: the bridge, then bare Python listening
            serve_ms.append(time_to_listen(lambda port: [*serve, "serve", "--plain", "--port", str(port)]))
            floor_ms.append(time_to_listen(lambda port: [*floor, str(port)]))
        import_ms, bare_ms = [], []
        for _ in range(s.import_runs):
            import_ms.append(import_time("cris_connect"))
            bare_ms.append(import_time("json"))
        self.results["startup"] = {
            "command": " ".join([*(Path(c).name for c in serve[:1]), *serve[1:], "serve", "--plain"]),
            "serve_to_listening_ms": median(serve_ms),
            "python_listening_floor_ms": median(floor_ms),
            "import_cris_connect_ms": median(import_ms),
            "runs": {"serve_ms": serve_ms, "floor_ms": floor_ms, "import_ms": import_ms},
            "heaviest_imports": heaviest_imports("cris_connect"),
        }

    # Adapters: only when their distributions are installed.

    def adapters(self) -> None:
        section: dict[str, Any] = {}
        installed = {ep.name for ep in importlib.metadata.entry_points(group="cris_connect")}
        present = {
            "filedrop": "filedrop" in installed or _importable("cris_connect_filedrop"),
            "archive": bool({"archive", "dcm4chee"} & installed) or _importable("cris_connect_archive"),
            "ohif": "ohif" in installed or _importable("cris_connect_ohif"),
        }
        if present["filedrop"]:
            section["filedrop_event_to_outbox_file"] = self.filedrop()
        else:
            section["filedrop_event_to_outbox_file"] = "not measured: adapter not present"
        section["archive_event_to_study_uid"] = (
            self.archive() if present["archive"] else "not measured: adapter not present")
        section["ohif_event_to_study_rendered"] = (
            self.ohif() if present["ohif"] else "not measured: adapter not present")
        self.results["adapters"] = section

    # The archive and viewer figures need real components; each adapter ships the script that
    # starts them (Orthanc; nginx with OHIF; Chromium), run here in its own process.

    def archive(self) -> dict[str, Any] | str:
        if not Path(ORTHANC).exists():
            return f"not measured: {ORTHANC} missing (Debian packages orthanc, orthanc-dicomweb)"
        runs = 5 if self.settings.quick else 20
        return _adapter_script(
            [PYTHON, str(ROOT / "plugins/dcm4chee/benchmarks_dcm4chee.py"), "--runs", str(runs)],
            timeout=180, stdout_json=True,
            summary=lambda r: f"median {r['median_ms']:.1f} ms, worst {r['worst_ms']:.1f} ms of {r['runs']} "
                              "(EVENT -> StudyInstanceUID, local Orthanc)")

    def ohif(self) -> dict[str, Any] | str:
        if self.settings.quick:  # OHIF, nginx and Chromium take ~15 s to start: not in the one-minute run
            return "not measured in --quick: run `nox -s bench` for it"
        missing = [path for path in (ORTHANC, NGINX, CHROMIUM) if not Path(path).exists()]
        if missing:
            return f"not measured: {', '.join(missing)} missing (.ci/install-services installs them)"
        with tempfile.TemporaryDirectory(prefix="cris-bench-ohif-") as work:
            out = Path(work) / "ohif.json"
            return _adapter_script(
                [PYTHON, str(ROOT / "plugins/ohif/bench_ohif.py"), "--runs", "20", "--json", str(out)],
                timeout=300, json_file=out, pick=lambda data: data["summary"],
                summary=lambda r: f"rendered median {r['rendered']['median_ms']:,.0f} ms, worst "
                                  f"{r['rendered']['worst_ms']:,.0f} ms of {r['runs']} (tab navigated median "
                                  f"{r['navigated']['median_ms']:,.0f} ms; warm viewer)")

    def filedrop(self) -> dict[str, Any] | str:
        with tempfile.TemporaryDirectory(prefix="cris-bench-outbox-") as outbox:
            target = targets.bridge("asyncio", name="bridge-filedrop",
                                    extra=("--enable", "filedrop", "--setting", f"filedrop.outbox={outbox}"))
            try:
                with targets.started(target) as server:
                    return targets.run_load("filedrop", server, "--outbox", outbox,
                                            "--count", str(self.settings.filedrop_count))
            except targets.TargetFailed as exc:
                return f"not measured: {str(exc).splitlines()[0]}"


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def time_to_listen(command_for: Callable[[int], list[str]], timeout: float = 10.0) -> float:
    """Milliseconds from starting the process until a TCP connection to its port succeeds."""
    port = free_port()
    started = time.perf_counter()
    command = command_for(port)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=targets.environment())
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                    return (time.perf_counter() - started) * 1000
            except OSError:
                if process.poll() is not None:
                    raise targets.TargetFailed(f"{command} exited with {process.returncode}") from None
                if time.perf_counter() - started > timeout:
                    raise targets.TargetFailed(f"{command} not listening after {timeout} s") from None
                time.sleep(0.001)
    finally:
        targets.stop(process)


def import_time(module: str) -> float:
    code = (f"import time; t = time.perf_counter(); import {module}; "
            "print((time.perf_counter() - t) * 1000)")
    done = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True,
                          env=targets.environment())
    return float(done.stdout)


def heaviest_imports(module: str, count: int = 8) -> list[dict[str, Any]]:
    """The modules that take longest to import themselves (`-X importtime`, self time)."""
    done = subprocess.run([PYTHON, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                          text=True, env=targets.environment())
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = (part.strip() for part in line[len("import time:"):].split("|"))
        rows.append({"module": name, "self_ms": int(self_us) / 1000,
                     "cumulative_ms": int(cumulative_us) / 1000})
    return sorted(rows, key=lambda row: row["self_ms"], reverse=True)[:count]


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (under a minute)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default all: {','.join(SECTIONS)})")
    parser.add_argument("--targets",
                        help="comma-separated targets: bridge-asyncio,bridge-trio,websockets,node-ws")
    parser.add_argument("--sessions", help="comma-separated session counts for round trips (default 1,50)")
    parser.add_argument("--rounds", type=int, help="rounds of every interleaved measurement")
    parser.add_argument("--duration", type=float, help="seconds measured per run")
    parser.add_argument("--idle-sessions", type=int, help="idle sessions for the memory figure")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    only = [section.strip() for section in args.only.split(",") if section.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    settings = Settings.for_quick() if args.quick else Settings()
    overrides: dict[str, Any] = {}
    if args.sessions:
        overrides["sessions"] = tuple(int(n) for n in args.sessions.split(","))
    if args.rounds:
        overrides.update(rounds=args.rounds, dispatch_rounds=args.rounds, isolation_rounds=args.rounds,
                         scale_rounds=args.rounds, startup_runs=args.rounds, import_runs=args.rounds)
    if args.duration:
        overrides.update(duration=args.duration, dispatch_duration=args.duration,
                         isolation_duration=args.duration)
    if args.idle_sessions:
        overrides["idle_sessions"] = args.idle_sessions
    settings = attrs.evolve(settings, **overrides)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    # SIGTERM (nox interrupted, a CI timeout) unwinds like Ctrl-C, so every server is stopped.
    signal.signal(signal.SIGTERM, _interrupted)
    target_names = [name.strip() for name in args.targets.split(",")] if args.targets else None
    results = Harness(settings, only=only, target_names=target_names, log=log).run()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temporary, args.out)
    print(report.render(results))
    log(f"results: {args.out} ({results['elapsed_s']} s)")
    return 0
