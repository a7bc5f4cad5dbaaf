"""cris-connect-launcher: run the viewer's own command line when CRIS Reporting opens a report."""

from cris_connect_launcher.adapter import Launcher, launcher
from cris_connect_launcher.settings import LauncherSettings

__all__ = ["Launcher", "LauncherSettings", "launcher"]
