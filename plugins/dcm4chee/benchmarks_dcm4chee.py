"""Time from EVENT received to StudyInstanceUID known, against a local Orthanc.

    python plugins/dcm4chee/benchmarks_dcm4chee.py [--runs 20] [--backend asyncio|trio]
        [--qido-url URL --accession ACC]   # an archive of your own instead of a fresh Orthanc

The clock starts when the bridge has decoded the EVENT and marked the accession pending
(`bridge.studies.begin`, before any plugin sees it) and stops when the adapter publishes the
lookup (`bridge.studies.publish`): what a viewer adapter waiting in `wait_for` experiences,
without the WebSocket hop from CRIS. The benchmark harness can call `measure()` directly.
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

import anyio

from cris_connect import Bridge, Config, ServerConfig, client
from cris_connect.config import PluginsConfig

ROOT = Path(__file__).resolve().parents[2]


async def measure(qido_url: str, accession: str, *, runs: int = 20) -> dict[str, Any]:
    """Send `runs` EVENTs for `accession` through a real bridge; seconds from receipt to found."""
    config = Config(
        server=ServerConfig(plain=True, port=0),
        plugins=PluginsConfig(enabled=("dcm4chee",), settings={"dcm4chee": {"url": qido_url}}),
    )
    received: dict[str, float] = {}
    samples: list[float] = []
    settled = anyio.Event()
    async with Bridge(config) as bridge:
        directory = bridge.studies
        begin, publish = directory.begin, directory.publish

        def timed_begin(accessions: Any) -> None:
            accessions = tuple(accessions)
            now = time.perf_counter()
            for item in accessions:
                received[item] = now
            begin(accessions)

        def timed_publish(lookup: Any) -> None:
            if lookup.accession in received and lookup.status != "pending":
                samples.append(time.perf_counter() - received.pop(lookup.accession))
                settled.set()
            publish(lookup)

        directory.begin = timed_begin  # type: ignore[method-assign]
        directory.publish = timed_publish  # type: ignore[method-assign]
        async with client.connect(bridge.url) as ws:
            for run in range(runs):
                settled = anyio.Event()
                await ws.send(json.dumps({"command": "EVENT", "accession": [accession]}))
                with anyio.fail_after(30):
                    await settled.wait()
                lookup = directory.get(accession)
                if lookup is None or lookup.status != "found":
                    raise RuntimeError(f"run {run}: {accession} not found ({lookup})")
    return {
        "runs": runs,
        "median_ms": round(statistics.median(samples) * 1000, 2),
        "worst_ms": round(max(samples) * 1000, 2),
        "first_ms": round(samples[0] * 1000, 2),
        "samples_ms": [round(s * 1000, 2) for s in samples],
    }


def _with_orthanc(runs: int, backend: str) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.support import dicom
    from tests.support.orthanc import Orthanc

    with tempfile.TemporaryDirectory() as workdir:
        orthanc = Orthanc(Path(workdir))
        orthanc.start()
        try:
            history = dicom.patient_with_priors(4)
            for study in history.studies:
                for ds in dicom.make_study(study, instances_per_series=2):
                    orthanc.upload(dicom.to_bytes(ds))
            result = anyio.run(
                lambda: measure(orthanc.dicomweb_root, history.current.accession_number, runs=runs),
                backend=backend,
            )
        finally:
            orthanc.kill()
    return {"archive": "Orthanc 1.10 (local, DICOMweb plugin)", "backend": backend, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--qido-url")
    parser.add_argument("--accession")
    args = parser.parse_args()
    if args.qido_url:
        result = anyio.run(lambda: measure(args.qido_url, args.accession, runs=args.runs),
                           backend=args.backend)
    else:
        result = _with_orthanc(args.runs, args.backend)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
