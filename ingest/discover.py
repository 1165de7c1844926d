"""Find inputs: files, directory walks, ``.tar(.gz)``/``.zip`` archives and ``.gz`` files.

Archives are read in memory, never extracted to disk. Members with absolute paths, ``..``
components or links are refused (path traversal), and so are members or files over the size
limits. Every refusal is a :class:`~ingest.parsers.base.RecordFailure` naming the file and member,
so one bad input never stops the walk.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.config import IngestSettings
from ingest.parsers.base import RecordFailure, Source

#: Extensions that never hold documents; met in a directory walk they are skipped, not failed.
NON_DOCUMENT_EXTENSIONS = frozenset(
    [
        ".txt",
        ".md",
        ".rst",
        ".csv",
        ".tsv",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".tif",
        ".tiff",
        ".svg",
        ".bmp",
        ".webp",
        ".mp4",
        ".avi",
        ".mov",
        ".docx",
        ".doc",
        ".xlsx",
        ".xls",
        ".pptx",
        ".ppt",
        ".html",
        ".htm",
        ".css",
        ".js",
        ".py",
        ".sh",
        ".log",
        ".ini",
        ".cfg",
        ".yaml",
        ".yml",
        ".toml",
        ".db",
        ".sqlite",
        ".parquet",
        ".pkl",
        ".npy",
        ".lock",
    ]
)

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


@dataclass(frozen=True, slots=True)
class Skipped:
    """An input deliberately not ingested (not a failure): an image, a PMC package asset."""

    source: str
    reason: str


Discovered = Source | RecordFailure | Skipped


def _is_tar(data: bytes) -> bool:
    return len(data) > 262 and data[257:262] == b"ustar"


def _gunzip(data: bytes, name: str, limit: int) -> bytes | RecordFailure:
    """Decompress a gzip stream, refusing output beyond ``limit`` bytes (gzip bombs)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            return RecordFailure(
                name, "gzip", f"decompressed size exceeds the limit of {limit} bytes"
            )
        out += d.flush()
    except zlib.error as exc:
        return RecordFailure(name, "gzip", f"corrupt or truncated gzip data: {exc}")
    if not d.eof:
        return RecordFailure(name, "gzip", "truncated gzip data (stream ends early)")
    return out


def _unsafe_member_name(member: str) -> str | None:
    p = PurePosixPath(member.replace("\\", "/"))
    if p.is_absolute() or member.startswith(("/", "\\")) or (len(member) > 1 and member[1] == ":"):
        return "absolute path"
    if ".." in p.parts:
        return "'..' in path"
    return None


def _expand(name: str, data: bytes, limits: IngestSettings, depth: int = 0) -> Iterator[Discovered]:
    """Yield the document sources inside ``data`` (itself, or archive members)."""
    if not data:
        yield RecordFailure(name, "file", "empty file")
        return
    if data[:2] == GZIP_MAGIC:
        out = _gunzip(data, name, limits.max_member_bytes if depth else limits.max_file_bytes)
        if isinstance(out, RecordFailure):
            yield out
            return
        if _is_tar(out) and depth == 0:
            yield from _tar_members(name, out, limits, depth)
        elif _is_tar(out) or out[:2] == GZIP_MAGIC:
            yield RecordFailure(name, "gzip", "nested archive or compression is not supported")
        else:
            yield Source(name, out)
        return
    if _is_tar(data):
        yield from _tar_members(name, data, limits, depth)
        return
    if data[:4] in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
        yield from _zip_members(name, data, limits, depth)
        return
    yield Source(name, data)


def _nested(
    name: str, member: str, data: bytes, limits: IngestSettings, depth: int
) -> Iterator[Discovered]:
    if _is_tar(data) or data[:4] in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
        yield RecordFailure(name, member, "an archive inside an archive is not supported")
        return
    yield from _expand(f"{name}!{member}", data, limits, depth + 1)


def _tar_members(
    name: str, data: bytes, limits: IngestSettings, depth: int
) -> Iterator[Discovered]:
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115 - in-memory, no fd
        members = tar.getmembers()
    except (tarfile.TarError, EOFError, OSError) as exc:
        yield RecordFailure(name, "tar", f"corrupt or truncated tar archive: {exc}")
        return
    if len(members) > limits.max_archive_members:
        yield RecordFailure(
            name, "tar", f"{len(members)} members exceed the limit of {limits.max_archive_members}"
        )
        return
    # A PMC package holds the article XML plus its PDF and figures: the XML is the article.
    is_pmc_package = any(m.isfile() and m.name.endswith(".nxml") for m in members)
    for m in members:
        if m.isdir():
            continue
        why = _unsafe_member_name(m.name)
        if why:
            yield RecordFailure(name, m.name, f"path traversal refused ({why})")
            continue
        if m.issym() or m.islnk():
            yield RecordFailure(
                name, m.name, "link member refused (could point outside the archive)"
            )
            continue
        if not m.isfile():
            yield Skipped(f"{name}!{m.name}", "not a regular file")
            continue
        if m.size > limits.max_member_bytes:
            yield RecordFailure(
                name, m.name, f"member too large ({m.size} bytes > limit {limits.max_member_bytes})"
            )
            continue
        if is_pmc_package and not m.name.endswith(".nxml"):
            yield Skipped(f"{name}!{m.name}", "PMC package asset (the .nxml article is ingested)")
            continue
        if os.path.basename(m.name).startswith(".") or non_document(m.name):
            yield Skipped(f"{name}!{m.name}", "not a document file type")
            continue
        fh = tar.extractfile(m)
        if fh is None:
            yield RecordFailure(name, m.name, "unreadable member")
            continue
        try:
            member_data = fh.read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            yield RecordFailure(name, m.name, f"truncated member: {exc}")
            continue
        yield from _nested(name, m.name, member_data, limits, depth)


def _zip_members(
    name: str, data: bytes, limits: IngestSettings, depth: int
) -> Iterator[Discovered]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        yield RecordFailure(name, "zip", f"corrupt or truncated zip archive: {exc}")
        return
    if len(infos) > limits.max_archive_members:
        yield RecordFailure(
            name, "zip", f"{len(infos)} members exceed the limit of {limits.max_archive_members}"
        )
        return
    for info in infos:
        if info.is_dir():
            continue
        why = _unsafe_member_name(info.filename)
        if why:
            yield RecordFailure(name, info.filename, f"path traversal refused ({why})")
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            yield RecordFailure(name, info.filename, "link member refused")
            continue
        if info.file_size > limits.max_member_bytes:
            yield RecordFailure(
                name,
                info.filename,
                f"member too large ({info.file_size} bytes > limit {limits.max_member_bytes})",
            )
            continue
        if os.path.basename(info.filename).startswith(".") or non_document(info.filename):
            yield Skipped(f"{name}!{info.filename}", "not a document file type")
            continue
        try:
            with zf.open(info) as fh:
                # Read one byte past the declared size: a lying header cannot inflate a bomb.
                member_data = fh.read(limits.max_member_bytes + 1)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
            yield RecordFailure(name, info.filename, f"unreadable member: {exc}")
            continue
        if len(member_data) > limits.max_member_bytes:
            yield RecordFailure(name, info.filename, "member inflates beyond the size limit")
            continue
        yield from _nested(name, info.filename, member_data, limits, depth)


def non_document(name: str) -> bool:
    """A file that is never a document (image, text, table…): counted as skipped, not parsed."""
    lower = name.lower()
    return any(lower.endswith(ext) for ext in NON_DOCUMENT_EXTENSIONS)


def _read_file(path: Path, limits: IngestSettings) -> bytes | RecordFailure:
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            return RecordFailure(
                str(path), "file", f"file too large ({size} bytes > limit {limits.max_file_bytes})"
            )
        return path.read_bytes()
    except PermissionError:
        return RecordFailure(str(path), "file", "permission denied")
    except IsADirectoryError:
        return RecordFailure(str(path), "file", "is a directory")
    except OSError as exc:
        return RecordFailure(str(path), "file", f"cannot read: {exc.strerror or exc}")


def walk(root: Path) -> Iterator[Path | RecordFailure]:
    """The files under ``root`` (links not followed), and a failure for each unreadable folder."""
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append, followlinks=False):
        while errors:
            err = errors.pop()
            yield RecordFailure(str(err.filename or dirpath), "directory", _os_reason(err))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            if not fn.startswith("."):
                yield Path(dirpath) / fn
    while errors:
        err = errors.pop()
        yield RecordFailure(str(err.filename or root), "directory", _os_reason(err))


def _os_reason(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied"
    return f"cannot list directory: {err.strerror or err}"


def discover(paths: list[Path], limits: IngestSettings) -> Iterator[Discovered]:
    """Every document source under ``paths``, plus failures and skipped files, in a stable order."""
    for path in paths:
        if not path.exists() and not path.is_symlink():
            yield RecordFailure(str(path), "path", "no such file or directory")
            continue
        if path.is_dir():
            for item in walk(path):
                if isinstance(item, RecordFailure):
                    yield item
                elif non_document(item.name):
                    yield Skipped(str(item), "not a document file type")
                else:
                    yield from _from_file(item, limits)
        else:
            yield from _from_file(path, limits)


def _from_file(path: Path, limits: IngestSettings) -> Iterator[Discovered]:
    data = _read_file(path, limits)
    if isinstance(data, RecordFailure):
        yield data
        return
    yield from _expand(str(path), data, limits)


__all__ = ["Discovered", "Skipped", "discover"]
