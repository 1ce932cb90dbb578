"""A folder kept in memory while a job runs lands on disk, whole, when the job ends or fails."""

from __future__ import annotations

import sqlite3

import pytest

from unified_assets.lib.core import scratch


def _write(folder):
    with sqlite3.connect(folder / "events.db") as db:
        db.execute("CREATE TABLE events (id INTEGER)")
        db.executemany("INSERT INTO events VALUES (?)", [(i,) for i in range(100)])
    (folder / "runs").mkdir()
    (folder / "runs" / "a.txt").write_text("run a")


def test_the_folder_lives_in_memory_during_the_block_and_on_disk_after(tmp_path):
    memory, folder = tmp_path / "memory", tmp_path / "home" / "dagster_home"
    memory.mkdir()
    with scratch.in_memory(folder, memory=memory, room=1) as used:
        assert used and folder.is_symlink()
        [kept] = memory.iterdir()
        assert folder.resolve() == kept.resolve()
        _write(folder)
        assert (kept / "runs" / "a.txt").read_text() == "run a"
    assert folder.is_dir() and not folder.is_symlink()
    assert list(memory.iterdir()) == []
    with sqlite3.connect(folder / "events.db") as db:
        assert db.execute("SELECT count(*) FROM events").fetchone() == (100,)
    assert (folder / "runs" / "a.txt").read_text() == "run a"


def test_a_failing_block_still_leaves_its_folder_on_disk(tmp_path):
    memory, folder = tmp_path / "memory", tmp_path / "dagster_home"
    memory.mkdir()
    with pytest.raises(RuntimeError, match="run failed"):
        with scratch.in_memory(folder, memory=memory, room=1):
            _write(folder)
            raise RuntimeError("run failed")
    assert not folder.is_symlink() and (folder / "runs" / "a.txt").exists()
    assert list(memory.iterdir()) == []


def test_without_room_in_memory_the_folder_is_on_disk_throughout(tmp_path):
    memory, folder = tmp_path / "memory", tmp_path / "dagster_home"
    memory.mkdir()
    with scratch.in_memory(folder, memory=memory, room=2**62) as used:
        assert not used and folder.is_dir() and not folder.is_symlink()
        _write(folder)
    assert (folder / "runs" / "a.txt").exists() and list(memory.iterdir()) == []
    with pytest.raises(FileExistsError):
        with scratch.in_memory(folder, memory=memory, room=1):
            pass


def test_removing_a_killed_jobs_folder_frees_its_memory_copy_too(tmp_path):
    memory, home = tmp_path / "memory", tmp_path / "replay"
    memory.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / "reports").mkdir(parents=True)
    kept = memory / "dagster_home-x"
    kept.mkdir()
    (home / "dagster_home").symlink_to(kept)  # a SIGKILL ended the block: link and copy remain
    (home / "other").symlink_to(elsewhere)  # not in memory: only the link goes
    scratch.remove(home, memory=memory)
    assert not home.exists() and not kept.exists() and elsewhere.exists()


def test_an_existing_folder_is_moved_into_memory_and_back_whole(tmp_path):
    """`unified-assets build` keeps the home's instance in memory: what was there before and
    what the block wrote are both on disk after it."""
    memory, folder = tmp_path / "memory", tmp_path / "dagster_home"
    memory.mkdir()
    folder.mkdir()
    (folder / "dagster.yaml").write_text("telemetry: {enabled: false}")
    with scratch.in_memory(folder, memory=memory, room=1, existing=True) as used:
        assert used and folder.is_symlink()
        assert (folder / "dagster.yaml").read_text() == "telemetry: {enabled: false}"
        _write(folder)
    assert folder.is_dir() and not folder.is_symlink() and list(memory.iterdir()) == []
    assert (folder / "dagster.yaml").exists() and (folder / "runs" / "a.txt").exists()
    with sqlite3.connect(folder / "events.db") as db:
        assert db.execute("SELECT count(*) FROM events").fetchone() == (100,)


def test_a_killed_jobs_memory_copy_is_put_back_before_the_next_block(tmp_path):
    memory, folder = tmp_path / "memory", tmp_path / "dagster_home"
    memory.mkdir()
    kept = memory / "dagster_home-x"
    kept.mkdir()
    _write(kept)
    folder.symlink_to(kept)  # a SIGKILL ended the block: link and copy remain
    with scratch.in_memory(folder, memory=memory, room=1, existing=True):
        assert (folder / "runs" / "a.txt").read_text() == "run a"
    assert not folder.is_symlink() and (folder / "runs" / "a.txt").exists()
    assert list(memory.iterdir()) == []
    gone = tmp_path / "gone"
    folder2 = tmp_path / "after_reboot"
    folder2.symlink_to(gone)  # the memory copy vanished with a reboot
    scratch.restore(folder2)
    assert folder2.is_dir() and not folder2.is_symlink() and list(folder2.iterdir()) == []
