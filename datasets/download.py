"""Verified, atomic downloads and safe archive extraction.

``fetch`` streams a URL into a temporary file next to its destination, checks
the sha256 (and the size when known) and only then moves the file into place
with :func:`os.replace`; a file already at the destination with the right hash
is a cache hit and touches no network. ``extract_tar`` refuses archive members
that could write outside the target (absolute paths, ``..``, links, devices)
and extracts into a temporary directory that is renamed into place at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

__all__ = [
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    "extract_tar",
    "fetch",
    "sha256_file",
]

_CHUNK = 1 << 20
_USER_AGENT = "cvcourse-coursedata/0.1 (+python urllib)"


class DownloadError(OSError):
    """A download failed (network error, truncated transfer, bad checksum)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not match the expected sha256 or size."""


class UnsafeArchiveError(ValueError):
    """An archive member would escape the extraction directory or is not a plain file/dir."""


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_cached(dest: Path, sha256: str, size: int | None) -> bool:
    if not dest.is_file():
        return False
    if size is not None and dest.stat().st_size != size:
        return False
    return sha256_file(dest) == sha256.lower()


def _show_progress(progress: bool) -> bool:
    try:
        return progress and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def fetch(
    url: str,
    dest: Path,
    sha256: str,
    *,
    size: int | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` and verify it; return ``dest``.

    Args:
        url: the source (any scheme urllib opens: https, http, file).
        dest: the final path of the file; its directory is created if needed.
        sha256: expected hex sha256 of the complete file.
        size: expected size in bytes, checked too when given.
        progress: show a tqdm progress bar on stderr (only when it is a TTY).

    Returns:
        ``dest``, now holding the verified file.

    Raises:
        ChecksumError: the bytes received do not match ``sha256``/``size``
            (nothing is left at ``dest`` nor in a temporary file).
        DownloadError: the transfer failed or was cut short (likewise).
    """
    dest = Path(dest)
    sha256 = sha256.lower()
    if _is_cached(dest, sha256, size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, received = _stream(url, out, size=size, progress=progress)
            out.flush()
            os.fsync(out.fileno())
        if size is not None and received != size:
            raise ChecksumError(
                f"size mismatch for {url}: expected {size} bytes, received {received}; "
                "the download was discarded"
            )
        if digest != sha256:
            raise ChecksumError(
                f"sha256 mismatch for {url}: expected {sha256}, got {digest}; "
                "the download was discarded (a corrupted transfer or a changed file)"
            )
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _stream(url: str, out, *, size: int | None, progress: bool) -> tuple[str, int]:
    """Copy the body of ``url`` into ``out``; return (sha256 hex, byte count)."""
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            length_header = response.headers.get("Content-Length") if response.headers else None
            expected = int(length_header) if length_header and length_header.isdigit() else None
            total = size if size is not None else expected
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=PurePosixPath(urllib.request.urlparse(url).path).name or url,
                disable=not _show_progress(progress),
                file=sys.stderr,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except ChecksumError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"download of {url} failed after {received} bytes: {exc}") from exc
    except Exception as exc:  # http.client.IncompleteRead and friends
        raise DownloadError(f"download of {url} failed after {received} bytes: {exc!r}") from exc
    if expected is not None and received != expected:
        raise DownloadError(
            f"download of {url} was cut short: received {received} of {expected} bytes"
        )
    return digest.hexdigest(), received


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"{archive}: refusing member with an empty or invalid name")
    if (
        name.startswith(("/", "\\"))
        or PurePosixPath(name).is_absolute()
        or (len(name) > 1 and name[1] == ":")
    ):
        raise UnsafeArchiveError(f"{archive}: refusing member with an absolute path: {name!r}")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: refusing member that leaves the target: {name!r}")
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(f"{archive}: refusing link member: {name!r}")
    if member.isdev():
        raise UnsafeArchiveError(f"{archive}: refusing device or fifo member: {name!r}")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"{archive}: refusing special member: {name!r}")


def extract_tar(archive: Path, dest: Path) -> Path:
    """Safely extract a (possibly compressed) tar archive into the directory ``dest``.

    Every member is checked before anything is written: absolute paths, ``..``
    components, hard or symbolic links, devices and fifos are refused with
    :class:`UnsafeArchiveError`. The archive is extracted into a temporary
    directory inside ``dest``; each top-level entry is then renamed into
    ``dest`` (replacing an existing entry of the same name), so a folder such
    as ``cifar-10-batches-py`` appears complete or not at all.

    Returns:
        ``dest``.
    """
    archive = Path(archive)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise UnsafeArchiveError(f"{archive}: not a readable tar archive: {exc}") from exc
    with tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member, archive)
        tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
        try:
            for member in members:
                member.mode = (member.mode | 0o600) & 0o755 if member.isfile() else 0o755
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, members=members, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                tar.extractall(tmp, members=members)  # noqa: S202 - members checked above
            for entry in sorted(tmp.iterdir()):
                target = dest / entry.name
                if target.is_dir() and not target.is_symlink():
                    trash = Path(tempfile.mkdtemp(dir=dest, prefix=".old-"))
                    os.replace(target, trash / entry.name)
                    os.replace(entry, target)
                    shutil.rmtree(trash, ignore_errors=True)
                else:
                    os.replace(entry, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
