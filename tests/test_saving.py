"""Tests of onnxtrain.saving: writing modes, failures that keep the old model intact, kill -9 and races."""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import re
import signal
import string
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onnxtrain import saving
from onnxtrain.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    ModelExistsError,
    ModelFileError,
    UnknownIdentifierError,
)
from onnxtrain.saving import WritingMode, _recovery, _writing


def _load_stress_tool():
    path = Path(__file__).resolve().parents[1] / "tools" / "kill_save_stress.py"
    spec = importlib.util.spec_from_file_location("kill_save_stress", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


stress = _load_stress_tool()

OLD = {"model.onnx": b"old model", "extra.txt": b"old extra"}
NEW = {"model.onnx": b"new model", "config.json": b"{}"}
ALL_MODES = list(WritingMode)
KILLS = 150  # per kill-loop test; tools/kill_save_stress.py runs longer loops


def _read(directory: Path) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in saving.list_model_files(directory).items()}


def _scratch(tmp_path: Path) -> list[str]:
    """Every scratch entry under tmp_path, lock files included: a lock's file exists only while it is held."""
    return [p.name for p in tmp_path.rglob(".onnxtrain-*")]


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


# The crash tests fork: Python 3.12+ warns that the test process has threads (ONNX Runtime's and numba's pools from
# earlier tests). The children only run saving code, which takes none of those threads' locks, then exit or are
# killed; the warning is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork")


def _crash_in_child(action: Callable[[], None]) -> None:
    """Run `action` in a forked child that is expected to SIGKILL itself at the crash point it patched in."""
    pid = os.fork()
    if pid == 0:
        try:
            action()
        finally:
            os._exit(0)  # reaching this means the crash point was never hit
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"child status {status}"


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


# --- WritingMode


@pytest.mark.parametrize(
    "value, expected",
    [
        (WritingMode.APPEND, WritingMode.APPEND),
        ("override", WritingMode.OVERRIDE),
        ("OVERRIDE", WritingMode.OVERRIDE),
        ("Fail_If_Exists", WritingMode.FAIL_IF_EXISTS),
        ("fail-if-exists", WritingMode.FAIL_IF_EXISTS),
        (" append ", WritingMode.APPEND),
    ],
)
def test_writing_mode_accepts_members_and_case_insensitive_names(value, expected):
    assert WritingMode.get(value) is expected


def test_writing_mode_rejects_unknown_name_listing_the_choices():
    with pytest.raises(UnknownIdentifierError, match=r"Could not interpret writing_mode 'sideways'.*override"):
        WritingMode.get("sideways")


def test_writing_mode_rejects_non_strings():
    with pytest.raises(InvalidTypeError, match=r"writing_mode expects a WritingMode.*Received: writing_mode=1"):
        WritingMode.get(1)


# --- save_files: the writing-mode table


def _prepare(tmp_path: Path, state: str) -> Path:
    if state == "missing_parents":
        return tmp_path / "a" / "b" / "model"
    directory = tmp_path / "model"
    if state == "existing":
        saving.save_files(directory, OLD, WritingMode.FAIL_IF_EXISTS)
    elif state == "empty":
        directory.mkdir()
    return directory


@pytest.mark.parametrize(
    "state, mode, expected",
    [
        ("existing", WritingMode.FAIL_IF_EXISTS, ModelExistsError),
        ("empty", WritingMode.FAIL_IF_EXISTS, ModelExistsError),
        ("missing", WritingMode.FAIL_IF_EXISTS, NEW),
        ("missing_parents", WritingMode.FAIL_IF_EXISTS, NEW),
        ("existing", WritingMode.OVERRIDE, NEW),
        ("empty", WritingMode.OVERRIDE, NEW),
        ("missing", WritingMode.OVERRIDE, NEW),
        ("missing_parents", WritingMode.OVERRIDE, NEW),
        ("existing", WritingMode.APPEND, OLD | NEW),
        ("empty", WritingMode.APPEND, NEW),
        ("missing", WritingMode.APPEND, NEW),
        ("missing_parents", WritingMode.APPEND, NEW),
    ],
)
def test_save_files_follows_the_writing_mode(tmp_path, state, mode, expected):
    directory = _prepare(tmp_path, state)
    before = _read(directory) if directory.is_dir() else None
    if isinstance(expected, type):
        with pytest.raises(expected):
            saving.save_files(directory, NEW, mode)
        assert _read(directory) == before
    else:
        assert saving.save_files(directory, NEW, mode) == directory
        assert _read(directory) == expected
    assert _scratch(tmp_path) == []


def test_fail_if_exists_names_the_directory_and_suggests_override(tmp_path):
    directory = _prepare(tmp_path, "empty")
    with pytest.raises(
        FileExistsError, match=rf"'{re.escape(str(directory))}'.*WritingMode.OVERRIDE.*WritingMode.APPEND"
    ):
        saving.save_files(directory, NEW, "fail_if_exists")


@pytest.mark.parametrize("mode", ALL_MODES)
def test_a_file_in_the_way_is_refused_for_every_mode(tmp_path, mode):
    blocker = tmp_path / "model"
    blocker.write_bytes(b"not a model")
    with pytest.raises(InvalidArgumentError, match=r"is an existing file.*Remove the file"):
        saving.save_files(blocker, NEW, mode)
    assert blocker.read_bytes() == b"not a model"


def test_a_file_in_the_way_is_named_as_the_caller_names_the_argument(tmp_path):
    blocker = tmp_path / "model"
    blocker.write_bytes(b"not a model")
    with pytest.raises(InvalidArgumentError, match=r"^save\(directory=\.\.\.\) expects a directory path, but '"):
        saving.save_files(blocker, NEW, argument="save(directory=...)")
    with pytest.raises(InvalidArgumentError, match=r"^save_files\(directory=\.\.\.\) expects a directory path"):
        saving.save_files(blocker, NEW)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_permission_denied_keeps_the_previous_directory(tmp_path, monkeypatch, mode):
    # We run as root, where chmod does not deny anything: refuse file creation under tmp_path instead.
    directory = _prepare(tmp_path, "missing" if mode is WritingMode.FAIL_IF_EXISTS else "existing")
    before = _read(directory) if directory.exists() else None
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and str(tmp_path) in str(path) and "-lock-" not in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(
        PermissionError, match=rf"Could not save '{re.escape(str(directory))}'.*Permission denied.*intact"
    ):
        saving.save_files(directory, NEW, mode)
    monkeypatch.undo()
    assert (_read(directory) if directory.exists() else None) == before
    assert _scratch(tmp_path) == []


def _permissions_are_enforced() -> bool:
    """False for root with CAP_DAC_OVERRIDE, which writes into read-only folders anyway."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o500)
        try:
            Path(folder, "probe").touch()
        except PermissionError:
            return True
        finally:
            os.chmod(folder, 0o700)
    return False


@pytest.mark.skipif(not _permissions_are_enforced(), reason="this user ignores directory permissions (root)")
def test_read_only_parent_is_reported_as_permission_denied(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="Permission denied"):
            saving.save_files(tmp_path / "model", NEW, "override")
    finally:
        tmp_path.chmod(0o700)


def _fills_the_disk(stream: BinaryIO) -> None:
    stream.write(b"x" * 1000)
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("mode", ALL_MODES)
def test_disk_full_while_writing_keeps_the_previous_directory(tmp_path, mode):
    directory = _prepare(tmp_path, "missing" if mode is WritingMode.FAIL_IF_EXISTS else "existing")
    before = _read(directory) if directory.exists() else None
    with pytest.raises(OSError, match=rf"'{re.escape(str(directory))}'.*The disk is full") as caught:
        saving.save_files(directory, {"model.onnx": b"new", "weights.bin": _fills_the_disk}, mode)
    assert caught.value.errno == errno.ENOSPC
    assert (_read(directory) if directory.exists() else None) == before
    assert _scratch(tmp_path) == []


@pytest.mark.parametrize("mode", [WritingMode.OVERRIDE, WritingMode.APPEND])
def test_disk_full_at_fsync_keeps_the_previous_directory(tmp_path, monkeypatch, mode):
    directory = _prepare(tmp_path, "existing")

    def failing_fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="The disk is full"):
        saving.save_files(directory, NEW, mode)
    monkeypatch.undo()
    assert _read(directory) == OLD
    assert _scratch(tmp_path) == []


INTACT = "The previous contents are intact and no temporary files remain."


@pytest.mark.parametrize(
    ("code", "strerror", "said"),
    [
        (errno.EPERM, None, "Operation not permitted: save to a folder you can write to, or fix its permissions."),
        (errno.EACCES, None, "Permission denied: save to a folder you can write to, or fix its permissions."),
        (errno.ENOSPC, None, "The disk is full: free some space or save somewhere else."),
        (errno.EDQUOT, None, "The disk quota is exceeded: free some space or save somewhere else."),
        (errno.EROFS, None, "The file system is read-only: save somewhere else."),
        # a message of the writer's own says more than the system's: kept before the fix
        (errno.ENOSPC, "quota of /scratch exceeded", ": quota of /scratch exceeded. The disk is full: free some"),
        (errno.EIO, None, ": Input/output error."),  # no fix: the system's message alone
    ],
    ids=["EPERM", "EACCES", "ENOSPC", "EDQUOT", "EROFS", "own message", "EIO"],
)
def test_a_failed_save_says_the_systems_message_once(tmp_path, code, strerror, said):
    """The fix of an errno restates its system message ("Operation not permitted: save to ..."), so the system
    message is not said before it as well ("...: Operation not permitted. Operation not permitted: save to ...")."""
    directory = tmp_path / "model"

    def failing_writer(stream: BinaryIO) -> None:
        raise OSError(code, strerror or os.strerror(code))

    with pytest.raises(OSError) as caught:
        saving.save_files(directory, {"model.onnx": failing_writer}, "override")
    message = caught.value.strerror
    assert caught.value.errno == code and message.startswith(f"Could not save '{directory}'")
    assert said in message and message.endswith(INTACT) and message.count(os.strerror(code)) <= 1
    if strerror is None and code != errno.EIO:
        assert message == f"Could not save '{directory}'. {said} {INTACT}"


def test_other_errors_from_a_writer_propagate_unchanged(tmp_path):
    directory = _prepare(tmp_path, "existing")

    def broken_writer(stream: BinaryIO) -> None:
        raise ValueError("cannot serialise")

    with pytest.raises(ValueError, match="cannot serialise"):
        saving.save_files(directory, {"model.onnx": broken_writer}, "override")
    assert _read(directory) == OLD
    assert _scratch(tmp_path) == []


@pytest.mark.parametrize(
    "directory, files, mode, error, match",
    [
        (3, NEW, "override", InvalidTypeError, "directory expects a str or os.PathLike"),
        ("", NEW, "override", InvalidArgumentError, "non-empty path"),
        ("model", [b"x"], "override", InvalidTypeError, "files expects a mapping"),
        ("model", {}, "override", InvalidArgumentError, "at least one file"),
        ("model", {"sub/model.onnx": b""}, "override", InvalidArgumentError, "plain file names"),
        ("model", {"..": b""}, "override", InvalidArgumentError, "plain file names"),
        ("model", {".onnxtrain-x": b""}, "override", InvalidArgumentError, "plain file names"),
        ("model", {"model.onnx": 3}, "override", InvalidTypeError, "must be bytes or a callable"),
        ("model", NEW, "sideways", UnknownIdentifierError, "Could not interpret writing_mode"),
        (".onnxtrain-model", NEW, "override", InvalidArgumentError, "reserved"),
    ],
)
def test_save_files_rejects_bad_arguments(tmp_path, monkeypatch, directory, files, mode, error, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=match):
        saving.save_files(directory, files, mode)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("replaceable", ["model.onnx", 3, iter(["model.onnx"])], ids=["str", "int", "iterator"])
def test_save_files_rejects_replaceable_that_is_not_a_collection_of_names(tmp_path, replaceable):
    with pytest.raises(
        InvalidTypeError, match=r"replaceable expects a collection of file names.*Received: replaceable="
    ):
        saving.save_files(tmp_path / "model", NEW, "override", replaceable=replaceable)
    assert list(tmp_path.iterdir()) == []


def test_save_files_accepts_writer_callables(tmp_path):
    saving.save_files(tmp_path / "model", {"a.bin": lambda stream: stream.write(b"abc")}, "override")
    assert _read(tmp_path / "model") == {"a.bin": b"abc"}


# --- what OVERRIDE may replace, and refusals that create nothing

MODEL_NAMES = frozenset({"model.onnx", "config.json", "checkpoint"})


def _snapshot(folder: Path) -> dict[str, bytes | str | None]:
    """Every entry under `folder` (lock files included): its bytes, a link's target, or None for a directory."""

    def state(path: Path) -> bytes | str | None:
        if path.is_symlink():
            return os.readlink(path)
        return None if path.is_dir() else path.read_bytes()

    return {str(p.relative_to(folder)): state(p) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(
    "entries",
    [
        {},
        {"model.onnx": b"m", "config.json": b"{}", "checkpoint": b"c"},
        {"model.onnx": b"m", ".onnxtrain-tmp-1-abcd-model.onnx": b"a killed save's leftover"},
    ],
    ids=["empty", "saved-model", "with-scratch"],
)
def test_check_replaceable_accepts_an_empty_or_saved_model_directory(tmp_path, entries):
    directory = tmp_path / "model"
    directory.mkdir()
    for name, data in entries.items():
        (directory / name).write_bytes(data)
    saving.check_replaceable(directory, MODEL_NAMES)
    saving.check_replaceable(tmp_path / "missing", MODEL_NAMES)
    assert sorted(os.listdir(directory)) == sorted(entries)


@pytest.mark.parametrize(
    "make, shown",
    [
        (lambda d: (d / "train.py").write_bytes(b"print()"), "'train.py'"),
        (lambda d: (d / "data").mkdir(), "'data/'"),
        (lambda d: (d / "checkpoint").mkdir(), "'checkpoint/'"),  # a model file name, but a folder
        (lambda d: (d / "config.json").symlink_to(d.parent / "elsewhere.json"), "'config.json'"),
    ],
    ids=["foreign-file", "folder", "folder-named-like-a-model-file", "symlink"],
)
def test_check_replaceable_refuses_foreign_entries_and_names_them(tmp_path, make, shown):
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "model.onnx").write_bytes(b"m")
    make(directory)
    before = _snapshot(tmp_path)
    with pytest.raises(ModelExistsError) as caught:
        saving.check_replaceable(directory, MODEL_NAMES)
    message = str(caught.value)
    assert f"Could not save to '{directory}' with writing_mode=WritingMode.OVERRIDE: it holds {shown}," in message
    assert "Choose another directory" in message and "remove those entries" in message
    assert "'model.onnx'" not in message.split("OVERRIDE replaces")[0]  # a model file is not listed
    assert _snapshot(tmp_path) == before


def test_check_replaceable_lists_the_first_five_unexpected_entries(tmp_path):
    for index in range(7):
        (tmp_path / f"notes{index}.txt").write_bytes(b"")
    with pytest.raises(ModelExistsError, match=r"holds 'notes0\.txt', .*'notes4\.txt' and 2 more, which"):
        saving.check_replaceable(tmp_path, MODEL_NAMES)


@pytest.mark.parametrize("where", ["cwd", "parent of cwd"])
def test_check_replaceable_refuses_the_working_directory_and_its_parents(tmp_path, monkeypatch, where):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "train.py").write_bytes(b"print()")
    monkeypatch.chdir(project)
    with pytest.raises(ModelExistsError, match="Choose another directory"):
        saving.check_replaceable("." if where == "cwd" else "..", MODEL_NAMES)
    assert (project / "train.py").read_bytes() == b"print()" and (project / "data").is_dir()


def test_a_file_is_left_to_save_files_to_refuse(tmp_path):
    (tmp_path / "model").write_bytes(b"not a model")
    saving.check_replaceable(tmp_path / "model", MODEL_NAMES)  # save_files says "is an existing file"


def test_a_refused_fail_if_exists_save_creates_no_lock_file(tmp_path):
    directory = saving.save_files(tmp_path / "model", OLD, "override")
    before = _snapshot(tmp_path)
    assert sorted(before) == ["model", *(f"model/{name}" for name in sorted(OLD))]  # the save left no lock file
    with pytest.raises(ModelExistsError):
        saving.save_files(directory, NEW, "fail_if_exists")
    assert _snapshot(tmp_path) == before


def test_a_refused_override_save_creates_no_lock_file(tmp_path):
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "train.py").write_bytes(b"print()")
    before = _snapshot(tmp_path)
    with pytest.raises(ModelExistsError, match=r"it holds 'train\.py', which are not files of a saved model"):
        saving.save_files(directory, NEW, "override", replaceable=MODEL_NAMES)
    assert _snapshot(tmp_path) == before  # no lock file, no staged directory


def _add_while_staging(monkeypatch, directory: Path, name: str) -> None:
    """Put a file `name` into `directory` once the new directory is staged, as another writer could."""
    stage = _writing._stage_directory

    def stage_then_add(target: Path, files):
        staged = stage(target, files)
        (directory / name).write_bytes(b"added meanwhile")
        return staged

    monkeypatch.setattr(_writing, "_stage_directory", stage_then_add)


def test_override_refuses_an_entry_added_while_the_new_directory_was_staged(tmp_path, monkeypatch):
    directory = saving.save_files(tmp_path / "model", {"model.onnx": b"old model"}, "override")
    _add_while_staging(monkeypatch, directory, "notes.txt")
    with pytest.raises(ModelExistsError, match=r"it holds 'notes\.txt', which are not files of a saved model"):
        saving.save_files(directory, {"model.onnx": b"new model"}, "override", replaceable=MODEL_NAMES)
    assert _read(directory) == {"model.onnx": b"old model", "notes.txt": b"added meanwhile"}
    assert _scratch(tmp_path) == []  # the staged directory is gone


def test_override_without_replaceable_replaces_whatever_the_directory_holds(tmp_path, monkeypatch):
    directory = saving.save_files(tmp_path / "model", {"model.onnx": b"old model"}, "override")
    _add_while_staging(monkeypatch, directory, "notes.txt")
    saving.save_files(directory, {"model.onnx": b"new model"}, "override")  # the caller owns the directory
    assert _read(directory) == {"model.onnx": b"new model"}


@pytest.mark.skipif(sys.platform == "win32", reason="saves are not serialised by a lock on Windows")
def test_the_replaceable_check_runs_before_the_lock_and_again_with_it_held(tmp_path, monkeypatch):
    import fcntl

    directory = saving.save_files(tmp_path / "model", OLD, "override")
    lock = tmp_path / ".onnxtrain-lock-model"
    check = _writing.refuse_unreplaceable
    held = []

    def check_and_probe(target: Path, replaceable):
        try:
            fd = os.open(lock, os.O_RDONLY)
        except FileNotFoundError:  # exists only while held
            held.append(False)
            return check(target, replaceable)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # succeeds only when no save holds the lock
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        check(target, replaceable)

    monkeypatch.setattr(_writing, "refuse_unreplaceable", check_and_probe)
    saving.save_files(directory, NEW, "override", replaceable={*OLD, *NEW})
    assert held == [False, True]
    assert _read(directory) == NEW


def test_looking_up_a_missing_directory_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelFileError, match=rf"No saved model at '{re.escape(str(tmp_path / 'typo'))}'"):
        saving.resolve_model_directory("typo")
    assert saving.recover_interrupted_save("typo") is False
    with pytest.raises(ModelFileError, match="no such directory"), saving.reading_model("typo"):
        pass
    assert os.listdir(tmp_path) == []


def test_append_keeps_foreign_files_and_folders(tmp_path):
    directory = tmp_path / "project"
    (directory / "data").mkdir(parents=True)
    (directory / "data" / "train.csv").write_bytes(b"1,2")
    (directory / "train.py").write_bytes(b"print()")
    saving.save_files(directory, NEW, "append")
    saving.save_files(directory, {"model.onnx": b"newer"}, "append")
    assert _read(directory) == {"config.json": b"{}", "model.onnx": b"newer", "train.py": b"print()"}
    assert (directory / "data" / "train.csv").read_bytes() == b"1,2"


# --- write_atomically


def test_write_atomically_creates_parents_and_replaces_the_file(tmp_path):
    target = tmp_path / "x" / "y" / "config.json"
    assert saving.write_atomically(target, b"one") == target
    saving.write_atomically(str(target), bytearray(b"two"))
    assert target.read_bytes() == b"two"
    assert _scratch(tmp_path) == []


def test_write_atomically_stages_in_the_same_folder(tmp_path):
    seen: list[str] = []
    saving.write_atomically(tmp_path / "f.bin", lambda stream: seen.extend(os.listdir(tmp_path)))
    assert [n for n in seen if n.startswith(f".onnxtrain-tmp-{os.getpid()}-")], seen


def test_write_atomically_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match=rf"Could not save '{re.escape(str(target))}'.*disk is full"):
        saving.write_atomically(target, _fills_the_disk)
    assert target.read_bytes() == b"old"
    assert _scratch(tmp_path) == []


def test_write_atomically_rejects_non_bytes(tmp_path):
    with pytest.raises(InvalidTypeError, match="must be bytes or a callable"):
        saving.write_atomically(tmp_path / "f.bin", "text")


# --- loader side


def test_resolve_model_directory_reports_a_missing_directory(tmp_path):
    with pytest.raises(ModelFileError, match=rf"No saved model at '{re.escape(str(tmp_path / 'nope'))}'"):
        saving.resolve_model_directory(tmp_path / "nope")


def test_resolve_model_directory_reports_a_file(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ModelFileError, match="is a file, not a model directory"):
        saving.list_model_files(tmp_path / "model.onnx")


def test_resolve_model_directory_reports_permission_denied(tmp_path, monkeypatch):
    saving.save_files(tmp_path / "model", NEW, "override")

    def refusing_listdir(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(os, "listdir", refusing_listdir)
    with pytest.raises(ModelFileError, match="permission denied"):
        saving.resolve_model_directory(tmp_path / "model")


def test_list_model_files_ignores_scratch_files(tmp_path):
    directory = saving.save_files(tmp_path / "model", NEW, "override")
    (directory / ".onnxtrain-tmp-1-abcd-model.onnx").write_bytes(b"partial")
    assert list(saving.list_model_files(directory)) == sorted(NEW)


def test_only_stale_scratch_is_removed(tmp_path):
    directory = saving.save_files(tmp_path / "model", NEW, "override")
    dead_pid = _fork(lambda: 0)
    _exit_code(dead_pid)
    live = directory / f".onnxtrain-tmp-{os.getpid()}-aaaa-model.onnx"
    dead = directory / f".onnxtrain-tmp-{dead_pid}-bbbb-model.onnx"
    old = directory / f".onnxtrain-tmp-{os.getpid()}-cccc-model.onnx"
    for path in (live, dead, old):
        path.write_bytes(b"partial")
    long_ago = time.time() - saving.STALE_AFTER_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    saving.save_files(directory, {"config.json": b"{ }"}, "append")
    assert _scratch(tmp_path) == [live.name]


# --- crashes at chosen points


def test_kill_after_the_exchange_leaves_a_complete_model_and_the_next_save_cleans_up(tmp_path, monkeypatch):
    directory = saving.save_files(tmp_path / "model", OLD, "override")

    def crash_before_deleting_the_old_directory() -> None:
        monkeypatch.setattr(_writing, "remove_entry", lambda path: _die())
        saving.save_files(directory, NEW, "override")

    _crash_in_child(crash_before_deleting_the_old_directory)
    assert _read(directory) == NEW
    assert len(_scratch(tmp_path)) == 1  # the old directory, set aside
    saving.save_files(directory, OLD, "override")
    assert _read(directory) == OLD
    assert _scratch(tmp_path) == []


def test_kill_between_fallback_renames_is_finished_by_the_loader(tmp_path, monkeypatch):
    directory = saving.save_files(tmp_path / "model", OLD, "override")
    real_rename = os.rename

    def crash_with_the_old_directory_moved_aside() -> None:
        with stress.without_exchange():
            monkeypatch.setattr(os, "rename", lambda a, b: _die() if Path(b) == directory else real_rename(a, b))
            saving.save_files(directory, NEW, "override")

    _crash_in_child(crash_with_the_old_directory_moved_aside)
    assert not directory.exists()
    assert _read(directory) == NEW  # the loader installs the complete new directory
    saving.save_files(directory, OLD, "append")
    assert _scratch(tmp_path) == []


def test_recover_interrupted_save_reports_what_it_did(tmp_path):
    assert saving.recover_interrupted_save(tmp_path / "model") is False
    assert saving.recover_interrupted_save(tmp_path / "missing" / "model") is False


@pytest.mark.parametrize("mode", [WritingMode.APPEND, WritingMode.OVERRIDE])
def test_kill_mid_write_leaves_the_old_model_and_scratch_that_loaders_ignore(tmp_path, monkeypatch, mode):
    directory = saving.save_files(tmp_path / "model", OLD, "override")

    def crash_mid_write(stream: BinaryIO) -> None:
        stream.write(b"half")
        _die()

    _crash_in_child(lambda: saving.save_files(directory, {"model.onnx": crash_mid_write}, mode))
    assert _read(directory) == OLD
    left = _scratch(tmp_path)
    assert len([name for name in left if "-lock-" not in name]) == 1
    # APPEND writes with the lock held (OVERRIDE stages without it): the killed saver's lock file stays too
    assert (".onnxtrain-lock-model" in left) == (mode is WritingMode.APPEND)
    saving.save_files(directory, NEW, mode)
    assert _scratch(tmp_path) == []  # the lock file included


def test_kill_during_write_atomically_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def crash_before_the_rename() -> None:
        monkeypatch.setattr(os, "replace", lambda a, b: _die())
        saving.write_atomically(target, b"new")

    _crash_in_child(crash_before_the_rename)
    assert target.read_bytes() == b"old"
    assert len(_scratch(tmp_path)) == 1
    saving.write_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert _scratch(tmp_path) == []


# --- SIGKILL at random moments


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "rename-aside-fallback"])
@pytest.mark.slow
def test_sigkill_during_override_never_leaves_a_mixed_or_partial_model(tmp_path, exchange):
    with contextlib.nullcontext() if exchange else stress.without_exchange():
        report = stress.run_kill_loop(tmp_path / "model", KILLS, mode="override", seed=1)
    print(report.summary())
    assert report.kills == KILLS and report.interrupted > 0, report.summary()
    assert report.unloadable == 0 and report.problems == [], report.problems[:3]
    assert _scratch(tmp_path) == []  # nor the lock files of the killed savers, once saved again


@pytest.mark.slow
def test_sigkill_during_append_never_leaves_a_mixed_or_partial_set(tmp_path):
    # Three files replaced per save beside a kept fourth: a kill among the renames used to leave a mix.
    report = stress.run_kill_loop(tmp_path / "model", KILLS, mode="append", seed=2)
    print(report.summary())
    assert report.kills == KILLS and report.interrupted > 0, report.summary()
    assert report.unloadable == 0 and report.problems == [], report.problems[:3]
    assert _scratch(tmp_path) == []  # nor the lock files of the killed savers, once saved again


class _Killed(BaseException):
    """Stands in for SIGKILL at one point of a save (the lock is released as a dead process's would be)."""


def _append_killed_after_commit(monkeypatch, directory: Path, files: dict[str, bytes], renames_done: int) -> None:
    """APPEND `files`, "killed" after its journal is committed and `renames_done` files are renamed in."""
    real_replace = os.replace
    calls = []

    def replace(source, target):
        if len(calls) == renames_done:
            raise _Killed
        calls.append(target)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(_Killed):
        saving.save_files(directory, files, "append")
    monkeypatch.setattr(os, "replace", real_replace)


@pytest.mark.parametrize("renames_done", [0, 1])  # of NEW's two files
def test_append_killed_among_its_renames_is_finished_by_the_next_load(tmp_path, monkeypatch, renames_done):
    directory = tmp_path / "model"
    saving.save_files(directory, OLD | {"notes.txt": b"kept"}, "append")
    _append_killed_after_commit(monkeypatch, directory, NEW, renames_done)
    journals = [n for n in os.listdir(directory) if n.startswith(".onnxtrain-commit-")]
    assert len(journals) == 1  # committed: the set is decided, only the renames are left

    with saving.reading_model(directory) as files:
        found = {name: path.read_bytes() for name, path in files.items()}
    assert found == {**OLD, **NEW, "notes.txt": b"kept"}
    assert not [n for n in os.listdir(directory) if n.startswith(".onnxtrain-")]


def test_append_killed_among_its_renames_is_finished_by_the_next_save(tmp_path, monkeypatch):
    directory = tmp_path / "model"
    saving.save_files(directory, OLD, "append")
    _append_killed_after_commit(monkeypatch, directory, NEW, 1)
    saving.save_files(directory, {"extra.bin": b"x"}, "append")
    assert saving.list_model_files(directory).keys() == {*OLD, *NEW, "extra.bin"}
    assert all((directory / name).read_bytes() == data for name, data in NEW.items())


def test_append_stopped_before_its_commit_point_leaves_the_old_files(tmp_path, monkeypatch):
    directory = tmp_path / "model"
    saving.save_files(directory, OLD, "append")
    real_rename = os.rename

    def rename(source, target):
        if Path(target).name.startswith(".onnxtrain-commit-"):
            raise OSError(errno.EIO, "simulated I/O error", str(target))
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="simulated I/O error"):
        saving.save_files(directory, NEW, "append")
    monkeypatch.setattr(os, "rename", real_rename)
    assert sorted(os.listdir(directory)) == sorted(OLD)  # no scratch file left either
    assert all((directory / name).read_bytes() == data for name, data in OLD.items())


def test_a_damaged_append_journal_is_reported_not_guessed(tmp_path):
    directory = tmp_path / "model"
    saving.save_files(directory, OLD, "append")
    (directory / f".onnxtrain-commit-{os.getpid()}-00000000-model").write_text('{"../escape": "model.onnx"}')
    with pytest.raises(
        ModelFileError, match=r"journal of an interrupted save.*is damaged.*Delete the journal, then save"
    ):
        saving.list_model_files(directory)
    assert all((directory / name).read_bytes() == data for name, data in OLD.items())


# --- concurrent savers


def _sample_until_done(directory: Path, pids: list[int], loadable) -> tuple[list[int], int]:
    """Load `directory` repeatedly while the children run. Returns their exit codes and the samples taken."""
    codes: dict[int, int] = {}
    samples = 0
    try:
        while len(codes) < len(pids):
            for pid in set(pids) - set(codes):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
            if directory.exists():
                found, problem = stress.load(directory, loadable)
                assert found is not None, problem
                samples += 1
    finally:
        for pid in set(pids) - set(codes):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return [codes[pid] for pid in pids], samples


@pytest.mark.slow
def test_concurrent_override_saves_end_with_one_complete_version(tmp_path):
    plan = stress.scenario("override", size=64 * 1024)
    directory = tmp_path / "model"

    def saver(version: dict[str, bytes]) -> int:
        for _ in range(25):
            saving.save_files(directory, version, "override")
        return 0

    pids = [_fork(lambda v=v: saver(v)) for v in plan.saves]
    codes, samples = _sample_until_done(directory, pids, plan.loadable)
    assert codes == [0, 0] and samples > 0
    found, problem = stress.load(directory, plan.loadable)
    assert found is not None, problem
    assert _scratch(tmp_path) == []


@pytest.mark.slow
def test_concurrent_append_saves_never_interleave_their_files(tmp_path):
    versions = [{"a.bin": v * 50_000, "b.bin": v * 60_000} for v in (b"1", b"2")]
    directory = tmp_path / "model"

    def saver(version: dict[str, bytes]) -> int:
        for _ in range(25):
            saving.save_files(directory, version, "append")
        return 0

    pids = [_fork(lambda v=v: saver(v)) for v in versions]
    codes, samples = _sample_until_done(directory, pids, versions)
    assert codes == [0, 0] and samples > 0
    assert stress.load(directory, versions)[0] is not None
    assert _scratch(tmp_path) == []  # no lock file either


def test_concurrent_fail_if_exists_saves_let_exactly_one_win(tmp_path):
    directory = tmp_path / "model"
    read_end, write_end = os.pipe()

    def slow_writer(index: int) -> Callable[[BinaryIO], None]:
        # Slow enough that every saver passes the early existence check before the first one commits.
        return lambda stream: (time.sleep(0.05), stream.write(str(index).encode() * 100_000))

    def saver(index: int) -> int:
        os.close(write_end)
        os.read(read_end, 1)  # start together
        try:
            saving.save_files(directory, {"model.onnx": slow_writer(index)}, "fail_if_exists")
        except ModelExistsError:
            return 3
        return 0

    pids = [_fork(lambda i=i: saver(i)) for i in range(4)]
    os.close(read_end)
    os.close(write_end)
    codes = [_exit_code(pid) for pid in pids]
    assert sorted(codes) == [0, 3, 3, 3], codes
    winner = codes.index(0)
    assert _read(directory) == {"model.onnx": str(winner).encode() * 100_000}
    assert _scratch(tmp_path) == []


# --- round trip

_names = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=16).filter(
    lambda n: n not in (".", "..") and not n.startswith(".onnxtrain-")
)
_file_sets = st.dictionaries(_names, st.binary(max_size=2000), min_size=1, max_size=4)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=_file_sets, second=_file_sets)
def test_saved_files_round_trip(tmp_path, first, second):
    directory = tmp_path / "model"
    saving.save_files(directory, first, "override")
    assert _read(directory) == first
    saving.save_files(directory, second, "append")
    assert _read(directory) == first | second
    saving.save_files(directory, second, "override")
    assert _read(directory) == second


def test_a_journal_may_only_rename_our_scratch_files(tmp_path):
    directory = tmp_path / "model"
    saving.save_files(directory, OLD, "append")
    (directory / "notes.txt").write_bytes(b"the user's")
    (directory / f".onnxtrain-commit-{os.getpid()}-00000000-model").write_text('{"notes.txt": "model.onnx"}')
    with pytest.raises(ModelFileError, match=r"is damaged"):
        saving.list_model_files(directory)
    assert (directory / "model.onnx").read_bytes() == OLD["model.onnx"]
    assert (directory / "notes.txt").read_bytes() == b"the user's"


def test_append_over_a_folder_is_refused_before_anything_changes(tmp_path):
    directory = tmp_path / "model"
    saving.save_files(directory, OLD, "append")
    (directory / "config.json").mkdir()  # in the way of one of NEW's files
    with pytest.raises(IsADirectoryError, match=r"a folder named 'config\.json' is in the way.*contents are intact"):
        saving.save_files(directory, NEW, "append")
    assert sorted(os.listdir(directory)) == sorted([*OLD, "config.json"])  # no journal, no scratch file
    assert all((directory / name).read_bytes() == data for name, data in OLD.items())
    saving.list_model_files(directory)  # and it still loads


def test_a_journal_that_cannot_be_finished_is_reported_by_the_loader(tmp_path, monkeypatch):
    directory = tmp_path / "model"
    saving.save_files(directory, OLD, "append")
    _append_killed_after_commit(monkeypatch, directory, NEW, 1)
    # A read-only folder: the recovery cannot take the lock to finish the renames.
    monkeypatch.setattr(_recovery, "recover_interrupted_save", lambda directory: False)
    with (
        pytest.raises(ModelFileError, match=r"holds an APPEND save that was interrupted after it was committed"),
        saving.reading_model(directory),
    ):
        pass


def test_append_replaces_a_symlink_in_the_way_not_the_file_it_points_to(tmp_path):
    directory = tmp_path / "model"
    saving.save_files(directory, OLD, "append")
    elsewhere = tmp_path / "annexed.onnx"  # git-annex and DVC keep model files as symlinks
    elsewhere.write_bytes(b"annexed")
    (directory / "model.onnx").unlink()
    (directory / "model.onnx").symlink_to(elsewhere)
    saving.save_files(directory, NEW, "append")
    assert (directory / "model.onnx").read_bytes() == NEW["model.onnx"] and not (directory / "model.onnx").is_symlink()
    assert elsewhere.read_bytes() == b"annexed"


@pytest.mark.parametrize("inside", ["", "sub"], ids=["the_working_directory", "its_parent"])
def test_override_refuses_to_replace_the_working_directory_and_append_saves_there(tmp_path, monkeypatch, inside):
    target = tmp_path / "model"
    saving.save_files(target, {"a.txt": b"old"})
    (target / "sub").mkdir()
    monkeypatch.chdir(target / inside)
    refused = r"holds this process's working directory .*Pass writing_mode=APPEND"
    with pytest.raises(InvalidArgumentError, match=refused):
        saving.save_files(".." if inside else ".", {"a.txt": b"new"}, WritingMode.OVERRIDE)
    assert (target / "a.txt").read_bytes() == b"old" and Path.cwd() == target / inside  # nothing replaced or lost
    saving.save_files(".." if inside else ".", {"a.txt": b"new"}, WritingMode.APPEND)
    assert (target / "a.txt").read_bytes() == b"new" and Path.cwd().exists()
