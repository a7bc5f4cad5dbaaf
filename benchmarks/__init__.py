"""The benchmark harness: the bridge measured against the peers it replaces, as interleaved ratios.

`python -m benchmarks` (or `nox -s bench`) runs everything; `docs/performance.md` explains each
figure and the targets.
"""
