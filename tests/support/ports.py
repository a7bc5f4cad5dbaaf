"""Pick free TCP ports for services that cannot choose their own."""

from __future__ import annotations

import random
import socket

# Below Linux's ephemeral range (32768-60999): an outgoing connection cannot grab the port between
# our check and the service's bind. Random, so concurrent test runs rarely pick the same one.
_LOWEST, _HIGHEST = 20000, 32000
_handed_out: set[int] = set()


def free_port() -> int:
    """Return a port that nothing listens on, on any interface, and that we have not handed out."""
    for _ in range(500):
        port = random.randrange(_LOWEST, _HIGHEST)
        if port not in _handed_out and _bindable(port):
            # Two services started together must not get the same port before either binds it.
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free TCP port found in {_LOWEST}-{_HIGHEST}")


def _bindable(port: int) -> bool:
    # Check all interfaces: Orthanc 1.10 cannot be told to bind to loopback only.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True
