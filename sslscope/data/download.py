"""Fetch a data set archive once, verify its MD5, and unpack it safely.

The flow every real-data loader follows (:func:`ensure_files`):

1. the extracted files are all there → use them (nothing is downloaded or re-hashed);
2. else the archive is there → check its MD5, then extract it;
3. else download the archive, check its MD5, then extract it.

Nothing half-done is ever used: a download streams to a temporary name and is renamed only
after its checksum matches (a mismatch deletes it), and extraction goes to a temporary folder
whose files are renamed into place one by one. Offline, the error names the URL, the files
expected and the directory to put them in, so a user can copy them there by hand.

Code that only looks at data (``sslscope report`` rebuilding neighbour grids) wraps its loads in
:func:`downloads_disabled`, so step 3 becomes the offline error instead of a multi-GB fetch.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from sslscope.errors import UserError
from sslscope.files import atomic_write

# Where data sets live when no directory is given: the config's data_dir default and the
# loaders' root=None both read this one name. It sits in this leaf module (stdlib imports only)
# that every downloading loader already imports; nothing under sslscope.data imports
# sslscope.config, so the config can import it without a cycle.
DEFAULT_DATA_DIR = "data"
CHUNK_BYTES = 1 << 20  # 1 MiB: streaming buffer for downloads and hashing
TIMEOUT_S = 60.0  # per socket operation, not for the whole download
_DOWNLOADS_ALLOWED = contextvars.ContextVar("sslscope_downloads_allowed", default=True)


@contextlib.contextmanager
def downloads_disabled() -> Iterator[None]:
    """Within this block :func:`ensure_files` uses files and archives on disk but never fetches."""
    token = _DOWNLOADS_ALLOWED.set(False)
    try:
        yield
    finally:
        _DOWNLOADS_ALLOWED.reset(token)


def md5sum(path: str | Path) -> str:
    """Hex MD5 digest of a file, read in 1 MiB chunks (constant memory).

    MD5 is what the data sets' publishers and torchvision list; it guards against truncated
    or corrupted downloads, not against tampering.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _ChecksumMismatch(Exception):
    """Internal signal from inside the atomic write: the bytes did not match the MD5."""


def _offline_hint(filename: str, dest_dir: Path, expected_files: Sequence[str]) -> str:
    if not expected_files:
        return f"put {filename} in {dest_dir}"
    return f"put {filename} (or its extracted files {', '.join(expected_files)}) in {dest_dir}"


def fetch_archive(
    url: str,
    dest_dir: str | Path,
    *,
    filename: str,
    md5: str,
    expected_files: Sequence[str] = (),
) -> Path:
    """Download ``url`` to ``dest_dir/filename`` and verify its MD5.

    The bytes stream to a temporary file in ``dest_dir`` (see :func:`sslscope.files.atomic_write`)
    that is renamed to ``filename`` only when its MD5 equals ``md5``; otherwise it is deleted.

    Args:
        url: where the archive is published.
        dest_dir: the data directory; created if missing.
        filename: the archive's name in ``dest_dir``.
        md5: expected hex digest of the whole archive.
        expected_files: the extracted files, relative to ``dest_dir``; named in the offline
            error so a user can put them there by hand.

    Returns:
        Path of the verified archive.

    Raises:
        UserError: the download failed (names the URL, the files expected and the directory) or
            the checksum did not match (names the file and both checksums; nothing is kept).
    """
    dest_dir = Path(dest_dir)
    path = dest_dir / filename
    got: dict[str, str] = {}

    def write(tmp: Path) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(tmp, "wb") as f:
            for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                digest.update(chunk)
                f.write(chunk)
        got["md5"] = digest.hexdigest()
        if got["md5"] != md5:  # raising here makes atomic_write delete the temporary file
            raise _ChecksumMismatch

    try:
        atomic_write(path, write)
    except _ChecksumMismatch:
        raise UserError(
            f"{filename} downloaded from {url} has MD5 {got['md5']} but {md5} was expected "
            "(a truncated or corrupted download), so it was deleted; run again to retry"
        ) from None
    # URLError covers HTTPError; OSError timeouts and resets; HTTPException a cut-off body.
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None) or error
        hint = _offline_hint(filename, dest_dir, expected_files)
        raise UserError(f"could not download {url} ({reason}); {hint} and run again") from None
    return path


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")) or ".." in name.parts:
        raise UserError(f"{archive} contains the unsafe path '{member.name}'; refusing to extract")
    if not (member.isfile() or member.isdir()):
        # The CIFAR and STL-10 archives hold only files and folders; links could point outside.
        kind = "link or device"
        raise UserError(f"{archive} contains the {kind} '{member.name}'; refusing to extract")


def extract(archive: str | Path, dest: str | Path) -> list[Path]:
    """Unpack a tar archive (any compression) into ``dest``, refusing unsafe members.

    Every member is checked before anything is written: absolute paths, '..' components,
    links and device files are refused. The archive is unpacked into a temporary folder in
    ``dest`` and each file is then renamed into place, so an interrupted extraction leaves no
    half-written file under its final name.

    Args:
        archive: a .tar, .tar.gz, .tgz, .tar.bz2 or .tar.xz file.
        dest: directory the archive's paths are relative to; created if missing.

    Returns:
        The extracted files' final paths.

    Raises:
        UserError: the archive is unreadable or holds an unsafe member.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
            try:
                if hasattr(tarfile, "data_filter"):  # Python ≥ 3.11.4: a second line of defence
                    tar.extractall(tmp, members=members, filter="data")
                else:  # pragma: no cover - members were checked above
                    tar.extractall(tmp, members=members)
                placed = []
                for member in members:
                    if member.isfile():
                        final = dest / member.name
                        final.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(tmp / member.name, final)
                        placed.append(final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise UserError(f"could not extract {archive} ({error}); delete it and run again") from None
    return placed


def ensure_files(
    root: str | Path,
    expected: Sequence[str],
    *,
    url: str,
    archive_name: str,
    md5: str,
) -> Path:
    """Make sure ``root/<each expected file>`` exists, extracting or downloading as needed.

    Args:
        root: the data directory.
        expected: files the loader reads, relative to ``root`` (POSIX separators).
        url: the archive's official URL.
        archive_name: its file name in ``root``.
        md5: the archive's official MD5.

    Returns:
        ``root`` as a Path.

    Raises:
        UserError: offline (or inside :func:`downloads_disabled`) with neither files nor
            archive; an archive whose MD5 does not match (it is deleted and nothing is
            extracted); an archive without the expected files.
    """
    root = Path(root)

    def missing() -> list[str]:
        return [name for name in expected if not (root / name).is_file()]

    if not missing():
        return root
    archive = root / archive_name
    if archive.is_file():
        got = md5sum(archive)
        if got != md5:
            archive.unlink()
            raise UserError(
                f"{archive} has MD5 {got} but {md5} was expected (truncated or corrupted), "
                "so it was deleted; run again to download it or put a good copy there"
            )
    elif not _DOWNLOADS_ALLOWED.get():
        raise UserError(
            f"{root} lacks {', '.join(missing())} and {archive_name}, and nothing is downloaded "
            "here; train or run `sslscope train` once to fetch the data set"
        )
    else:
        fetch_archive(url, root, filename=archive_name, md5=md5, expected_files=expected)
    extract(archive, root)
    still_missing = missing()
    if still_missing:
        raise UserError(
            f"{archive} does not contain {', '.join(still_missing)}; is it the archive from {url}?"
        )
    return root
