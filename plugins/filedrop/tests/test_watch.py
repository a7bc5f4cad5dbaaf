"""Change detection: events where they work, polling where they may not."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import watchfiles

from cris_connect_filedrop.watch import SAFETY_SCAN, FolderWatch, network_file_system


def test_unc_paths_are_network_shares() -> None:
    assert network_file_system(Path("//pacs-server/drop")) == "a network share (UNC path)"


def test_a_local_folder_is_not(tmp_path: Path) -> None:
    assert network_file_system(tmp_path) is None


def test_polling_on_request(tmp_path: Path) -> None:
    watch = FolderWatch(tmp_path, poll=True, poll_interval=0.25)
    assert watch.polling and watch.rescan_interval == 0.25
    assert FolderWatch(tmp_path, poll=False, poll_interval=0.25).rescan_interval == SAFETY_SCAN


@pytest.mark.anyio
async def test_falls_back_to_polling_when_the_watcher_fails(tmp_path: Path, all_logs: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def no_watcher(*args: object, **kwargs: object) -> None:
        raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(watchfiles, "awatch", no_watcher)
    watch = FolderWatch(tmp_path, poll=False, poll_interval=0.25)
    await watch.run()
    assert watch.polling
    assert any("change events unavailable" in r.getMessage() for r in all_logs.records)


@pytest.mark.anyio
@pytest.mark.parametrize("poll", [True, False], ids=["polling", "events"])
async def test_inbox_removed_at_run_time_is_made_again(inbox: Path, run_filedrop: Any, connect_cris: Any,
                                                       wait_for: Any, poll: bool) -> None:
    settings = {"inbox": str(inbox), "poll": poll, "poll_interval": 0.05, "settle_time": 0.05}
    async with run_filedrop(settings) as (bridge, plugin), connect_cris(bridge) as cris:
        shutil.rmtree(inbox)
        await wait_for(lambda: (inbox / "failed").is_dir(), "the inbox to be made again")
        (inbox / "clear.json").write_text('{"command": "CLEAR"}')
        assert await cris.receive() == {"command": "CLEAR"}
        assert plugin.inbox.watch.polling
