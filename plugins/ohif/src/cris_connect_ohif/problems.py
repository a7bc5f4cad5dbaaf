"""Log each ongoing problem once (browser down, archive down, ...), and once more when it clears.

A radiologist opens dozens of reports an hour; a stopped browser must not write a warning for
every one of them. The first failure of a kind is a warning with the reason and what to check;
repeats go to DEBUG until the same kind of operation succeeds again, which is logged at INFO.
"""

from __future__ import annotations

import logging


class Problems:
    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._active: dict[str, str] = {}

    @property
    def active(self) -> dict[str, str]:
        """Ongoing problems by kind: what `/healthz`-style checks and tests can read."""
        return dict(self._active)

    def report(self, kind: str, sentence: str) -> None:
        if kind in self._active:
            self.log.debug("%s (still)", sentence)
            return
        self._active[kind] = sentence
        self.log.warning("%s", sentence)

    def resolved(self, kind: str, sentence: str) -> None:
        if self._active.pop(kind, None) is not None:
            self.log.info("%s", sentence)
