"""`python -m benchmarks [--quick]`: the benchmark harness (`nox -s bench`)."""

import sys

from benchmarks.harness import main

sys.exit(main())
