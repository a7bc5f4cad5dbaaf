"""cris-connect: the PACS side of CRIS Connect, as a framework.

An adapter needs one import: `from cris_connect import hookimpl, Display`.
"""

from cris_connect.__about__ import __version__
from cris_connect.bridge import Bridge, NoSession
from cris_connect.codec import DecodeError, InvalidMessage, decode, encode
from cris_connect.config import Config, ConfigError, ServerConfig
from cris_connect.context import Context
from cris_connect.hookspecs import hookimpl
from cris_connect.messages import (
    Clear,
    Commit,
    CrisCommand,
    Display,
    Event,
    LoggedIn,
    LoggedOut,
    Login,
    Logout,
    Message,
    PacsCommand,
    ReadOnly,
    Release,
    UnknownCommand,
)
from cris_connect.session import Session

__all__ = [
    "Bridge",
    "Clear",
    "Commit",
    "Config",
    "ConfigError",
    "Context",
    "CrisCommand",
    "DecodeError",
    "Display",
    "Event",
    "InvalidMessage",
    "LoggedIn",
    "LoggedOut",
    "Login",
    "Logout",
    "Message",
    "NoSession",
    "PacsCommand",
    "ReadOnly",
    "Release",
    "ServerConfig",
    "Session",
    "UnknownCommand",
    "__version__",
    "decode",
    "encode",
    "hookimpl",
]
