"""Atomic file writes, JSON-object and JSON-lines reading.

Every file sslscope writes goes to a temporary name in the same directory and is renamed into
place, so an interrupted run never leaves a half-written config, checkpoint or report: readers
see either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sslscope.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path``.

    Args:
        path: final destination; its parent directory is created if needed.
        write: writes the whole file to the temporary path it is given.

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except BaseException as error:
        tmp_path.unlink(missing_ok=True)
        if type(error).__name__ == "SafetensorError":  # its I/O errors are not OSErrors
            code = errno.ENOSPC if "No space left" in str(error) else errno.EIO
            raise OSError(code, os.strerror(code), str(path)) from error
        if isinstance(error, OSError) and error.errno and not error.filename:
            # A write deep in a library names no file; the sentence the user reads should.
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise
    return path


def remove_temporaries(folder: str | Path) -> int:
    """Delete what :func:`atomic_write` leaves when its process is killed mid-write.

    Only the ``.NAME.XXXX.tmp`` files it creates, anywhere under ``folder``; call it where no
    other process is writing (a run directory its trainer owns). Returns how many it removed.
    """
    removed = 0
    for tmp in Path(folder).rglob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def read_tensors(path: str | Path, advice: str) -> dict[str, Any]:
    """The tensors of a safetensors file (which holds no code to run: tensors and JSON only).

    A missing, truncated or foreign file (a pickle planted under its name) is a UserError
    ending in ``advice``, e.g. "delete it to record the instrument afresh".
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise UserError(f"{path} is not a readable safetensors file ({err}); {advice}") \
            from None


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file of objects.

    A trailing partial line (a crash mid-append) is skipped; so is a corrupt line in the
    middle, keeping every valid row after it (one damaged line loses one row, not the rest).

    Raises:
        UserError: the file is not UTF-8 text, or a line holds something other than an object.
    """
    path = Path(path)
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a JSON-lines text file; restore or delete it") from None
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict):
            raise UserError(f"{path} should hold one JSON object per line, found "
                            f"{type(row).__name__}; restore or delete it")
        rows.append(row)
    return rows


def append_jsonl(path: str | Path, row: dict[str, Any]) -> None:
    """Append one JSON object as a line and flush it to disk.

    A write that fails (a full disk) is cut back off, so the file never ends in half a line
    that the next append would fuse with its own.
    """
    data = memoryview((json.dumps(row) + "\n").encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:  # unbuffered: a failed write is seen here, not again when a buffer is closed
        size = os.lseek(fd, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)  # needs no space
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    finally:
        os.close(fd)


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Rewrite a whole JSON-lines file atomically (used to trim it when a run resumes)."""
    return atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_json_object(path: str | Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file is missing.

    Raises:
        UserError: the file is not valid JSON, or holds something other than an object.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({err}); restore or delete it.") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} should hold a JSON object, found {type(obj).__name__}.")
    return obj
