"""Benchmark: EVENT received -> OHIF tab navigated -> study rendered, with a warm viewer.

Starts the real components the end-to-end test uses (Orthanc with DICOMweb, OHIF from npm behind
nginx, headless Chromium), a bridge with the `ohif` adapter (optionally the `dcm4chee` one too),
and a real WebSocket client as CRIS. After warm-up EVENTs, each measured EVENT opens a different
study than the one shown; for each it records, from the moment the bridge received the EVENT:

- looked_up: the accession's StudyInstanceUID known (archive adapter or QIDO);
- navigated: the adapter's `Page.navigate` was answered (the tab committed the viewer URL);
- loaded:    the page's load event (OHIF's bundles loaded, from cache when warm);
- rendered:  OHIF drew the study's first image (canvas + the "(1/N)" image counter), polled every
             10 ms through a separate DevTools connection.

    python plugins/ohif/bench_ohif.py [--runs 20] [--backend asyncio|trio] [--with-dcm4chee]

Prints one line per run and the median and worst of each figure; `--json FILE` writes them too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # tests.support and the test helpers live at the repository root

import anyio  # noqa: E402

from cris_connect import Event, hookimpl  # noqa: E402
from plugins.ohif.tests.helpers import (  # noqa: E402
    cris_client,
    page,
    rendered,
    reset_tabs,
    running_bridge,
    settled,
    wait_for,
)

IMAGES = 3
FIGURES = ("looked_up", "navigated", "loaded", "rendered")


class Probe:
    """A plugin that notes when the bridge handed each EVENT to plugins: "EVENT received"."""

    name = "probe"

    def __init__(self) -> None:
        self.received: dict[str, float] = {}

    @hookimpl
    def on_event(self, message: Event) -> None:
        self.received[message.accession[0]] = time.perf_counter()


async def measure(args: argparse.Namespace, orthanc: Any, viewer: Any, chromium: Any,
                  studies: list[Any]) -> list[dict[str, float]]:
    probe = Probe()
    others = {"dcm4chee": {"url": orthanc.dicomweb_root}} if args.with_dcm4chee else {}
    settings = {"url": viewer.base_url, "cdp_url": chromium.debug_url, "load_timeout": 20.0,
                "command_timeout": 25.0}
    results: list[dict[str, float]] = []
    async with running_bridge(settings, extra=(probe,), others=others, hook_timeout=30.0) as (
            bridge, adapter), cris_client(bridge) as cris:
        await adapter.wait_watching(10)
        total = args.warmup + args.runs
        for n in range(1, total + 1):
            study = studies[n % len(studies)]  # never the study already on screen
            probe.received.pop(study.accession_number, None)
            sent = time.perf_counter()
            await cris.send("EVENT", accession=[study.accession_number])
            navigation = await settled(adapter, n, timeout=60)
            if navigation.outcome != "shown":
                raise RuntimeError(f"run {n}: {navigation.outcome} {navigation.detail}")
            async with page(adapter) as tab:
                uid = study.study_instance_uid
                await wait_for(lambda: rendered(tab, uid, IMAGES), timeout=60,  # noqa: B023 - awaited here
                               what="OHIF to render", interval=0.01)
            done = time.perf_counter()
            received = probe.received.get(study.accession_number, navigation.received)
            assert navigation.navigated is not None and navigation.loaded is not None
            assert navigation.resolved is not None
            row = {
                "sent_to_received": received - sent,
                "looked_up": navigation.resolved - received,
                "navigated": navigation.navigated - received,
                "loaded": navigation.loaded - received,
                "rendered": done - received,
            }
            label = "warm-up" if n <= args.warmup else f"run {n - args.warmup:2d}"
            print(f"{label}: " + "  ".join(f"{key} {row[key] * 1000:7.1f} ms" for key in FIGURES), flush=True)
            if n > args.warmup:
                results.append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--with-dcm4chee", action="store_true",
                        help="let the dcm4chee archive adapter find the studies")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()

    from tests.support.chromium import Chromium
    from tests.support.dicom import Study, make_study, to_bytes
    from tests.support.ohif import OhifViewer, unpacked_dist
    from tests.support.orthanc import Orthanc

    work = Path(tempfile.mkdtemp(prefix="bench-ohif-"))
    studies = [Study(accession_number=f"BENCH{i}", patient_name=f"BENCH^{i}") for i in range(args.studies)]
    with Orthanc(work / "orthanc") as orthanc:
        for study in studies:
            for instance in make_study(study, instances_per_series=IMAGES):
                orthanc.upload(to_bytes(instance))
        with OhifViewer(work / "ohif", dist=unpacked_dist(), orthanc_url=orthanc.base_url) as viewer, \
                Chromium(work / "chromium") as chromium:
            reset_tabs(chromium.debug_url)
            results = anyio.run(measure, args, orthanc, viewer, chromium, studies, backend=args.backend)

    summary: dict[str, Any] = {"runs": len(results), "backend": args.backend,
                               "archive_adapter": args.with_dcm4chee}
    print(f"\n{len(results)} runs, {args.backend}{', with dcm4chee' if args.with_dcm4chee else ''}"
          " (from EVENT received by the bridge):")
    for key in FIGURES:
        values = [row[key] for row in results]
        summary[key] = {"median_ms": round(statistics.median(values) * 1000, 1),
                        "worst_ms": round(max(values) * 1000, 1)}
        figures = summary[key]
        print(f"  {key:9s} median {figures['median_ms']:7.1f} ms   worst {figures['worst_ms']:7.1f} ms")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
