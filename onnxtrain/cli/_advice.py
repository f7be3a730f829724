"""The library's advice in the command line's words: an error raised by the Python API that tells the user to call
`load_model(..., optimizer=...)` or `compile(engine=...)` names the option that does it instead (`--fresh-optimizer`,
`--engine`), so that a CLI user is never sent to Python; system errors without Python's "[Errno N]" (`error_text`);
and the library's warnings as lines of the command's (`warnings_as_lines`)."""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

_PORTABLE = "the portable engine (onnxtrain train --engine portable, the default)"
# (pattern, replacement): the Python remedies that the library's messages give, in the order they are tried.
_REMEDIES = [
    (
        re.compile(r"Load with engine='([\w-]+)' to resume exactly, or pass optimizer=\.\.\. as well to continue with "
                   r"engine='([\w-]+)' and a fresh optimizer\."),
        r"Resume with --engine \1 to resume exactly, or add --fresh-optimizer to continue with --engine \2 and a "
        r"fresh optimizer.",
    ),
    (re.compile(r"Load it with load_model\(\.\.\., engine=\"portable\", optimizer=\.\.\.\)"),
     "Resume it with {resume}"),
    (re.compile(r"Load with load_model\(\.\.\.,\s*optimizer=\.\.\.\)"), "Resume with {resume}"),
    (re.compile(r"load_model\(\.\.\.,\s*optimizer=\.\.\.\)"), "{resume}"),
    (re.compile(r"engine=[\"']ort-training[\"']"), "--engine ort-training"),
    (re.compile(r"Compile with engine='portable'(?: \(the default\))?"), f"Use {_PORTABLE}"),
    (re.compile(r"compile\(engine=[\"']portable[\"']\)"), _PORTABLE),
]  # fmt: skip


def in_cli_words(message: str, resume: str | None = None) -> str:
    """`message` with the Python remedies it gives replaced by the command line's (`resume`: the --resume DIR)."""
    command = f"onnxtrain train --resume {resume or 'DIR'} --epochs N --fresh-optimizer"
    for pattern, replacement in _REMEDIES:
        message = pattern.sub(replacement.replace("{resume}", command), message)
    return message


def error_text(error: BaseException) -> str:
    """What an error line says of `error`: its message, without the "[Errno 2]" that Python puts before a system
    error's (a system error that reaches the command line unexplained still names its file)."""
    if isinstance(error, OSError) and error.errno is not None and error.strerror:
        return error.strerror + (f": '{error.filename}'" if error.filename else "")
    return str(error)


@contextlib.contextmanager
def warnings_as_lines(command: str) -> Iterator[None]:
    """Show Python warnings as `onnxtrain <command>: warning: <message>` lines on stderr, without the file
    and source line Python prints (the code that warned is onnxtrain's, not the user's)."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        print(f"onnxtrain {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield
