"""`python -m cris_connect` is `cris-connect`, for machines where pip's scripts are not on PATH."""

import sys

from cris_connect.cli import main

sys.exit(main())
