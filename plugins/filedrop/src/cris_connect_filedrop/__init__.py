"""cris-connect-filedrop: CRIS commands out as files, command files in, nothing lost.

Enable it with `plugins.enabled = ["filedrop"]` and a `[plugins.filedrop]` section; see
docs/filedrop.md.
"""

from cris_connect_filedrop.__about__ import __version__
from cris_connect_filedrop.config import FiledropConfig
from cris_connect_filedrop.plugin import FileDrop, filedrop

__all__ = ["FileDrop", "FiledropConfig", "__version__", "filedrop"]
