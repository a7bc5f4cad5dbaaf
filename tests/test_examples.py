"""The examples run as a newcomer runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.mark.parametrize("script", ["embed_asyncio.py", "embed_trio.py"])
def test_embedding_examples_round_trip(script: str) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLES / script), "--once"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "CRIS opened RX1001" in result.stdout
    assert 'CRIS received {"command":"DISPLAY","accession":["RX1001"]}' in result.stdout


def test_site_example_is_a_valid_config() -> None:
    result = subprocess.run([sys.executable, "-m", "cris_connect", "check-config", str(EXAMPLES / "site.toml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
