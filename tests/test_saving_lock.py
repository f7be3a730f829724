"""The save lock (onnxtrain/saving/_lock.py): its file `.onnxtrain-lock-<name>` exists only while a save or load
holds it, saves and loads still exclude each other across processes, and a killed holder blocks no one."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from onnxtrain import saving
from onnxtrain.errors import ModelExistsError
from onnxtrain.saving import WritingMode, _lock

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="saves are not serialised by a lock on Windows"),
    # The children fork from a process that may run ONNX Runtime's and numba's threads; they run saving code only.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork"),
]

OLD = {"model.onnx": b"old model", "extra.txt": b"old extra"}
NEW = {"model.onnx": b"new model", "config.json": b"{}"}


def _locks(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".onnxtrain-lock-*"))


def _held(path: Path) -> bool:
    """Whether some open file description holds a lock on the file at `path` (False when there is none)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)


def _fork(action: Callable[[], int]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            code = action()
        finally:
            os._exit(code)
    return pid


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# --- no lock file outlives its use --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(WritingMode))
def test_a_save_leaves_no_lock_file(tmp_path, mode):
    directory = tmp_path / "model"
    if mode is not WritingMode.FAIL_IF_EXISTS:
        saving.save_files(directory, OLD, "override")
    saving.save_files(directory, NEW, mode)
    assert _locks(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_loads_leave_no_lock_file(tmp_path):
    directory = saving.save_files(tmp_path / "model", OLD)
    with saving.reading_model(directory) as files:
        assert _held(_lock.lock_path(directory))  # held while the block reads
        assert sorted(files) == sorted(OLD)
    assert saving.list_model_files(directory).keys() == OLD.keys()
    assert _locks(tmp_path) == []


def test_a_refused_or_failing_save_leaves_no_lock_file(tmp_path):
    directory = saving.save_files(tmp_path / "model", OLD)
    with pytest.raises(ModelExistsError):
        saving.save_files(directory, NEW, "fail_if_exists")
    (directory / "notes.txt").write_bytes(b"mine")
    with pytest.raises(ModelExistsError, match=r"notes\.txt"):
        saving.save_files(directory, NEW, "override", replaceable={*OLD, *NEW})

    def fails(stream):
        raise OSError(errno.EIO, "simulated I/O error")

    with pytest.raises(OSError, match="simulated I/O error"):
        saving.save_files(directory, {"model.onnx": fails}, "append")
    assert _locks(tmp_path) == []


def test_a_load_of_a_folder_where_no_lock_file_can_be_made_takes_none_and_still_reads(tmp_path, monkeypatch):
    """A read-only parent folder (as root, permissions are not enforced: refuse the lock file's creation)."""
    directory = saving.save_files(tmp_path / "model", OLD)
    real_open = os.open

    def read_only_parent(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(path).parent == tmp_path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_parent)
    with saving.reading_model(directory) as files:
        assert {name: path.read_bytes() for name, path in files.items()} == OLD
    with pytest.raises(PermissionError, match="Permission denied"):
        saving.save_files(directory, NEW, "override")
    assert _locks(tmp_path) == []


def test_a_lock_file_that_cannot_be_removed_is_left_and_the_load_still_reads(tmp_path, monkeypatch):
    """A killed saver's lock file in a folder made read-only since: the load locks it, reads, cannot unlink it."""
    directory = saving.save_files(tmp_path / "model", OLD)
    leftover = _lock.lock_path(directory)
    leftover.touch()

    def refuse_unlink(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "unlink", refuse_unlink)
    with saving.reading_model(directory) as files:
        assert {name: path.read_bytes() for name, path in files.items()} == OLD
    monkeypatch.undo()
    assert _locks(tmp_path) == [leftover.name] and not _held(leftover)
    with saving.reading_model(directory):  # where it can be removed, the next load removes it
        pass
    assert _locks(tmp_path) == []


def _permissions_are_enforced(folder: Path) -> bool:
    """False for root with CAP_DAC_OVERRIDE, which writes into read-only folders anyway."""
    probe = folder / "probe"
    folder.chmod(0o500)
    try:
        probe.touch()
    except PermissionError:
        return True
    finally:
        folder.chmod(0o700)
    probe.unlink()
    return False


def test_a_read_only_parent_folder_still_loads_and_keeps_nothing(tmp_path):
    parent = tmp_path / "shared"
    directory = saving.save_files(parent / "model", OLD)
    if not _permissions_are_enforced(parent):
        pytest.skip("this user ignores folder permissions (root): the monkeypatched test above stands in")
    parent.chmod(0o500)
    try:
        assert saving.list_model_files(directory).keys() == OLD.keys()
        with saving.reading_model(directory) as files:
            assert sorted(files) == sorted(OLD)
        assert sorted(os.listdir(parent)) == ["model"]
    finally:
        parent.chmod(0o700)


# --- mutual exclusion ---------------------------------------------------------------------------------------------
def test_a_lock_file_unlinked_while_waiting_is_not_trusted(tmp_path, monkeypatch):
    """The race the inode check closes: the file opened is unlinked by its last holder (and a new one made by the
    next saver) before this one's flock returns. The lock must then be taken on the file the path names."""
    target = tmp_path / "model"
    path = _lock.lock_path(target)
    real_flock = fcntl.flock
    calls = []

    def flock_after_a_release(descriptor, operation):
        if not calls:  # the holder we waited for unlinks it; another saver creates a new one
            os.unlink(path)
            path.touch()
        calls.append(os.fstat(descriptor).st_ino)
        real_flock(descriptor, operation)

    path.touch()
    monkeypatch.setattr(fcntl, "flock", flock_after_a_release)
    with _lock.locked(target, exclusive=True):
        monkeypatch.setattr(fcntl, "flock", real_flock)
        assert len(set(calls[:2])) == 2  # retried on the new file
        assert _held(path)  # the file the path names is the one held
    assert not path.exists()


@pytest.mark.slow
def test_exclusive_holders_never_overlap_and_shared_ones_never_see_one(tmp_path):
    """Four processes take the lock of one target 150 times each, two exclusively, two shared, so its file is
    unlinked and made anew all the time (the concurrent saves of tests/test_saving.py check whole saves). An
    exclusive holder creates a marker file with O_EXCL and removes it before letting go: a second exclusive holder
    at once fails to create it, a shared holder sees it. Without the inode check this fails at once."""
    target = tmp_path / "model"
    marker = tmp_path / "inside"
    rounds = 150

    def worker(exclusive: bool) -> int:
        for _ in range(rounds):
            with _lock.locked(target, exclusive=exclusive):
                if exclusive:
                    try:
                        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
                    except FileExistsError:
                        return 3  # another exclusive holder is inside
                    os.sched_yield()
                    os.unlink(marker)
                elif marker.exists():
                    return 4  # a shared holder beside an exclusive one
        return 0

    pids = [_fork(lambda exclusive=exclusive: worker(exclusive)) for exclusive in (True, False, True, False)]
    assert [_exit_code(pid) for pid in pids] == [0, 0, 0, 0]
    assert _locks(tmp_path) == []


# --- a killed holder ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("exclusive", [True, False], ids=["saver", "loader"])
def test_a_lock_held_by_a_killed_process_blocks_nothing_and_the_next_save_removes_its_file(tmp_path, exclusive):
    directory = saving.save_files(tmp_path / "model", OLD)
    path = _lock.lock_path(directory)

    def hold_and_die() -> int:
        with _lock.locked(directory, exclusive=exclusive):
            os.kill(os.getpid(), signal.SIGKILL)
        return 0

    pid = _fork(hold_and_die)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert path.exists() and not _held(path)  # its file stays, its flock went with it
    saving.save_files(directory, NEW, "override")
    assert {name: p.read_bytes() for name, p in saving.list_model_files(directory).items()} == NEW
    assert _locks(tmp_path) == []


def test_a_save_removes_the_released_lock_files_of_its_neighbours_and_keeps_held_ones(tmp_path):
    """`epoch-3` killed mid-save is never saved again: the next save in its folder removes its lock file."""
    killed, busy = _lock.lock_path(tmp_path / "epoch-3"), _lock.lock_path(tmp_path / "epoch-4")
    killed.touch()
    with _lock.locked(tmp_path / "epoch-4", exclusive=False):  # a load of epoch-4 reading now
        saving.save_files(tmp_path / "epoch-5", NEW)
        assert _locks(tmp_path) == [busy.name]
    assert _locks(tmp_path) == []
