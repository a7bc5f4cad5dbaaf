"""Log a failing thing once per streak: the first failure with its reason, then the recovery.

An archive that is down for an hour must not write a line per EVENT, but the operator must see
that it went down, why, and when it came back.
"""

from __future__ import annotations

import logging


class Streaks:
    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._failing: dict[str, int] = {}

    def failed(self, what: str, reason: str) -> None:
        """`what` names the thing (e.g. "QIDO-RS at http://pacs/rs"); `reason` has no patient IDs."""
        count = self._failing.get(what, 0)
        self._failing[what] = count + 1
        if count == 0:
            self.log.warning("dcm4chee: %s is failing: %s (logged once until it works again)", what, reason)

    def succeeded(self, what: str) -> None:
        count = self._failing.pop(what, 0)
        if count:
            self.log.info("dcm4chee: %s works again after %d failure(s)", what, count)

    def failing(self, what: str) -> bool:
        return what in self._failing
