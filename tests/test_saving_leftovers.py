"""Leftovers of killed saves beside a saved directory (onnxtrain/saving/_scratch.py remove_stale_beside): the next
save into the same folder removes the temporary entries of dead savers of any name (a run folder's
`.onnxtrain-tmp-<pid>-...-model` copy after a kill -9, a history.csv's temporary file), and keeps live savers'
entries, the complete "new" directories that their own target's recovery installs, and whatever a killed APPEND's
journal in that folder names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from onnxtrain import saving

FILES = {"model.onnx": b"new model", "config.json": b"{}"}


def _dead_pid() -> int:
    """The id of a process that has ended (a subprocess, not a fork: this process may run threads)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _leftovers(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.startswith(".onnxtrain-")}  # lock files too: none stays


def test_a_save_removes_dead_savers_temporary_entries_of_other_names_beside_it(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    staged = tmp_path / f".onnxtrain-tmp-{dead}-0a1b2c3d-checkpoints"  # a killed save's whole staged copy
    staged.mkdir()
    (staged / "model.onnx").write_bytes(b"x" * 1000)
    (tmp_path / f".onnxtrain-tmp-{dead}-0a1b2c3e-history.csv").write_bytes(b"epoch\n1\n")
    kept = {
        f".onnxtrain-tmp-{live}-0a1b2c3f-history.csv",  # a live saver's
        f".onnxtrain-new-{dead}-0a1b2c40-checkpoints",  # complete: installed by the recovery of checkpoints/
    }
    for name in kept:
        (tmp_path / name).mkdir()
    saving.save_files(tmp_path / "model", FILES, "override")
    assert _leftovers(tmp_path) == kept
    assert (tmp_path / "model" / "model.onnx").read_bytes() == b"new model"


def test_a_save_keeps_the_files_a_killed_appends_journal_names_in_its_folder(tmp_path):
    """A folder that is itself a saved directory, with an APPEND killed after its commit point: its journal names
    a scratch file of a dead saver, which only that directory's recovery may rename in."""
    dead = _dead_pid()
    parent = saving.save_files(tmp_path / "run", {"notes.txt": b"old"}, "override")
    temp = parent / f".onnxtrain-tmp-{dead}-0a1b2c3d-notes.txt"
    temp.write_bytes(b"new")
    (parent / f".onnxtrain-commit-{dead}-0a1b2c3e-run").write_text(json.dumps({temp.name: "notes.txt"}))
    saving.save_files(parent / "model", FILES, "override")
    assert temp.read_bytes() == b"new"
    assert saving.list_model_files(parent)  # the parent's own recovery finishes its APPEND
    assert (parent / "notes.txt").read_bytes() == b"new"
    assert _leftovers(parent) == set()
