"""nginx serving one static site on a loopback port, with exact-file overrides and proxies.

Run as an ordinary process (``daemon off``) with its own config, pid file, logs and temp paths in a
work directory - never the Debian system service or its /etc/nginx/nginx.conf.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from collections.abc import Mapping
from pathlib import Path

import httpx

from . import processes
from .polling import wait_until
from .ports import free_port
from .service import Service

NGINX_EXECUTABLE = "/usr/sbin/nginx"
MIME_TYPES = "/etc/nginx/mime.types"


class Nginx(Service):
    """A static site rooted at ``root``.

    ``files`` maps exact URL paths to files served instead of the site's own (e.g. a generated
    ``/app-config.js``). ``proxies`` maps URL prefixes to upstream base URLs; the full request
    path is passed on. With ``spa_fallback`` unknown paths answer ``/index.html``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        root: Path,
        files: Mapping[str, Path] | None = None,
        proxies: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        spa_fallback: bool = True,
        start_timeout: float = 15.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.workdir = workdir
        self.root = root
        self.files = dict(files or {})
        self.proxies = dict(proxies or {})
        self.headers = dict(headers or {})
        self.spa_fallback = spa_fallback
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.port = free_port()
        self.error_log = workdir / "error.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def config_text(self) -> str:
        work = self.workdir
        lines = [
            "daemon off;",
            "master_process on;",
            "worker_processes 1;",
            f"pid {_quote(work / 'nginx.pid')};",
            f"error_log {_quote(self.error_log)} warn;",
            _user_directive(),
            "events { worker_connections 256; }",
            "http {",
            f"    include {MIME_TYPES};",
            "    default_type application/octet-stream;",
            f"    access_log {_quote(work / 'access.log')};",
            *(
                f"    {kind}_temp_path {_quote(work / 'temp' / kind)};"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            ),
            "    server {",
            f"        listen 127.0.0.1:{self.port};",
            "        server_name localhost;",
            f"        root {_quote(self.root)};",
        ]
        for url, path in self.files.items():
            lines += [
                f"        location = {url} {{",
                f"            alias {_quote(path)};",
                "            add_header Cache-Control no-store;",
                "        }",
            ]
        for prefix, upstream in self.proxies.items():
            lines += [
                f"        location {prefix} {{",
                f"            proxy_pass {upstream.rstrip('/')};",
                # Orthanc builds absolute URLs (RetrieveURL, BulkDataURI) from Host: keep ours.
                "            proxy_set_header Host $http_host;",
                "            proxy_http_version 1.1;",
                "            proxy_buffering off;",
                "            client_max_body_size 0;",
                "        }",
            ]
        fallback = "try_files $uri /index.html;" if self.spa_fallback else "try_files $uri =404;"
        lines += [
            "        location / {",
            f"            {fallback}",
            *(
                f"            add_header {name} {_quote(value)} always;"
                for name, value in self.headers.items()
            ),
            "        }",
            "    }",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        if self._process is not None:
            return
        (self.workdir / "temp").mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            config = self.workdir / "nginx.conf"
            config.write_text(self.config_text())
            self._process = processes.spawn(
                # -e: log startup errors to our file, not /var/log/nginx (which may not be writable).
                [NGINX_EXECUTABLE, "-p", str(self.workdir), "-c", str(config), "-e", str(self.error_log)],
                log=self.workdir / "nginx.stdout.log",
            )
            try:
                wait_until(self._ready, timeout=self.start_timeout, what=f"nginx at {self.base_url}")
                return
            except processes.ExitedEarly:
                self._process = None
                # Lost the race for our free port: try another.
                if attempt == 2 or "Address already in use" not in self.error_log.read_text():
                    raise
                self.port = free_port()
            except BaseException:
                self.stop()
                raise

    def _ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise processes.ExitedEarly("nginx", self._process.returncode, self.error_log)
        # trust_env=False: loopback never goes through an HTTP(S)_PROXY from the environment.
        try:
            httpx.get(f"{self.base_url}/", timeout=1.0, trust_env=False)
        except httpx.TransportError:
            return False
        return True

    def stop(self) -> None:
        # SIGTERM is nginx's fast shutdown; the workers leave with the master.
        if self._process is not None:
            processes.stop(self._process, timeout=self.stop_timeout)
            self._process = None


def _quote(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _user_directive() -> str:
    # A root master would run its workers as "nobody", who cannot read a cache under /root.
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
