"""What one CRIS Reporting session has told us so far, as an immutable snapshot.

Plugins read it at any time (`session.context`) and receive the snapshot taken right after the
command they are handling, so a slow plugin still sees the context that command produced.
"""

from __future__ import annotations

import attrs

from cris_connect.masking import masked_repr
from cris_connect.messages import (
    Event,
    LoggedIn,
    LoggedOut,
    Message,
    ReadOnly,
    Release,
)


@attrs.frozen
class Context:
    """The radiologist's state in one CRIS session: logged in, and which report is open."""

    logged_in: bool = False
    accession: tuple[str, ...] = ()
    exam_code: str | None = None
    nhs: str | None = attrs.field(default=None, repr=masked_repr)
    chi: str | None = attrs.field(default=None, repr=masked_repr)
    read_only: bool = False

    @property
    def report_open(self) -> bool:
        return bool(self.accession)

    def after(self, message: Message) -> Context:
        """The context once CRIS has sent `message`."""
        if isinstance(message, (Event, ReadOnly)):
            return attrs.evolve(
                self,
                accession=message.accession,
                exam_code=message.exam_code,
                nhs=message.nhs,
                chi=message.chi,
                read_only=isinstance(message, ReadOnly),
            )
        if isinstance(message, Release):
            return Context(logged_in=self.logged_in)
        if isinstance(message, LoggedIn):
            return Context(logged_in=True)
        if isinstance(message, LoggedOut):
            return Context()
        # COMMIT keeps the report open until RELEASE; unknown commands change nothing we know.
        return self
