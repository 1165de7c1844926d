"""Receiving an upload: a ``multipart/form-data`` body parsed as it streams in, each file part
written straight into a folder (never held in memory), the limits checked as bytes arrive.

Nothing here queues a job: the caller does that only once the whole body is on disk, so a client
that disconnects mid-upload leaves no job (and its partial folder is removed).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from core.config import ServiceSettings
from core.jobs import JobFile
from service.errors import (
    InvalidMultipart,
    InvalidRequest,
    UnsupportedMediaType,
    UploadNotStored,
    UploadTooLarge,
)

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_MAX_PARTS_DEPTH = 16
#: bytes of UTF-8 per path component: NAME_MAX is 255 bytes, room left for a ``<n>-`` prefix
_MAX_COMPONENT_BYTES = 240


def not_stored(exc: OSError) -> UploadNotStored:
    """The 503 for an upload the service's own disk could not take (full, not writable)."""
    return UploadNotStored(
        f"the upload could not be written to the jobs folder: {exc.strerror or exc}"
    )


def safe_name(filename: str, index: int) -> str:
    """A relative path made of ``filename``'s components: no absolute path, no ``.``/``..``, no
    control characters, none longer than a file system takes; ``upload-<index>`` when nothing is
    left."""
    parts = [
        _fit(_UNSAFE.sub("_", p))
        for p in filename.replace("\\", "/").split("/")
        if p not in ("", ".", "..")
    ][-_MAX_PARTS_DEPTH:]
    return "/".join(parts) or f"upload-{index}"


def _fit(component: str) -> str:
    """``component`` cut to _MAX_COMPONENT_BYTES of UTF-8 (file systems count bytes: 255), its
    extension kept, never a character split."""
    if len(component.encode()) <= _MAX_COMPONENT_BYTES:
        return component
    stem, dot, ext = component.rpartition(".")
    if not dot or not stem or len(ext.encode()) > 16:
        stem, dot, ext = component, "", ""
    room = _MAX_COMPONENT_BYTES - len(f"{dot}{ext}".encode())
    cut = stem.encode()[:room].decode("utf-8", "ignore")  # drops a character cut in two
    return f"{cut}{dot}{ext}"


@dataclass
class _Names:
    """The names spooled so far and every folder they make, so that a clash (the same name, or
    ``a`` and ``a/b``, which cannot both be spooled) is found in O(depth) per file."""

    taken: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)

    def _clashes(self, name: str) -> bool:
        parts = name.split("/")
        parents = ("/".join(parts[:i]) for i in range(1, len(parts)))
        return name in self.taken or name in self.folders or any(p in self.taken for p in parents)

    def add(self, name: str) -> str:
        """``name``, or ``<n>-name`` when it clashes with one taken; then taken."""
        unique, n = name, 1
        while self._clashes(unique):
            n += 1
            unique = f"{n}-{name}"
        self.taken.add(unique)
        parts = unique.split("/")
        self.folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        return unique


@dataclass
class _Receiver:
    """Multipart callbacks spooling file parts under ``folder``. The callbacks run on the event
    loop and only queue what to do (``pending``); :meth:`flush` does it in a worker thread, one
    file open at a time."""

    folder: Path
    limits: ServiceSettings
    files: list[JobFile] = field(default_factory=list)
    #: (path to create and open | data to write | None: close the open file)
    pending: list[Path | bytes | None] = field(default_factory=list)
    names: _Names = field(default_factory=_Names)
    _open: IO[bytes] | None = None
    _header_name: bytes = b""
    _header_value: bytes = b""
    _disposition: bytes = b""
    _in_file: bool = False
    _size: int = 0

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._in_file = False
        self._size = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        kind, options = parse_options_header(self._disposition)
        if kind != b"form-data" or b"name" not in options:
            raise InvalidMultipart(
                f"part {len(self.files) + 1} has no 'Content-Disposition: form-data; name=...' "
                "header"
            )
        if b"filename" not in options:
            name = options[b"name"].decode("utf-8", "replace")
            raise InvalidRequest(
                f"form field {name!r} is not a file: send each file as a part with a filename "
                "(curl -F files=@PATH)",
                param=name,
            )
        if len(self.files) >= self.limits.max_upload_files:
            raise UploadTooLarge(
                f"more than {self.limits.max_upload_files} files in one upload "
                "(LITRAG_SERVICE__MAX_UPLOAD_FILES): send them in several uploads or as an archive"
            )
        filename = options[b"filename"].decode("utf-8", "replace")
        unique = self.names.add(safe_name(filename, len(self.files) + 1))
        self.pending.append(self.folder / unique)
        self._in_file = True
        self.files.append(JobFile(name=unique, bytes=0))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        self._size += end - start
        if self._size > self.limits.max_upload_file_bytes:
            raise UploadTooLarge(
                f"file {self.files[-1].name!r} is over the limit of "
                f"{self.limits.max_upload_file_bytes} bytes per file "
                "(LITRAG_SERVICE__MAX_UPLOAD_FILE_BYTES)",
                param=self.files[-1].name,
            )
        self.pending.append(data[start:end])

    def on_part_end(self) -> None:
        if self._in_file:
            self.files[-1] = JobFile(name=self.files[-1].name, bytes=self._size)
            self.pending.append(None)
            self._in_file = False

    @property
    def in_file(self) -> bool:
        """A file part has begun and not ended."""
        return self._in_file

    def flush(self) -> None:
        """Do (in a worker thread) what the parser queued: create, write, close."""
        for op in self.pending:
            if isinstance(op, Path):
                op.parent.mkdir(parents=True, exist_ok=True)
                self._open = op.open("wb")
            elif op is None:
                if self._open is not None:
                    self._open.close()
                    self._open = None
            elif self._open is not None:
                self._open.write(op)
        self.pending.clear()

    def close_all(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None


async def receive_upload(request: Request, folder: Path, limits: ServiceSettings) -> list[JobFile]:
    """Write the files of ``request``'s multipart body under ``folder`` (created); the files as
    received. Raises the service's 4xx errors (and removes ``folder``) when the body is not
    multipart, breaks a limit or ends early; a client disconnect propagates."""
    media, params = parse_options_header(request.headers.get("content-type"))
    if media != b"multipart/form-data":
        raise UnsupportedMediaType(
            "upload files as multipart/form-data (curl -F files=@PATH), got "
            f"{request.headers.get('content-type') or 'no Content-Type'}"
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidMultipart("the multipart/form-data Content-Type has no boundary")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_upload_bytes:
        raise UploadTooLarge(_too_large(limits))
    try:
        await run_in_threadpool(folder.mkdir, parents=True)
    except OSError as exc:
        raise not_stored(exc) from exc
    receiver = _Receiver(folder, limits)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limits.max_upload_bytes:
                raise UploadTooLarge(_too_large(limits))
            parser.write(chunk)
            if receiver.pending:
                await run_in_threadpool(receiver.flush)
        parser.finalize()
        await run_in_threadpool(receiver.flush)
        if receiver.in_file or not _ended(parser):
            raise InvalidMultipart("the multipart body ends before its closing boundary")
        if not receiver.files:
            raise InvalidRequest("the upload holds no file: send at least one (-F files=@PATH)")
    except MultipartParseError as exc:
        _discard(receiver, folder)
        raise InvalidMultipart(f"the multipart body cannot be read: {exc}") from exc
    except OSError as exc:  # the service's disk, not the client's input: 503, nothing kept
        _discard(receiver, folder)
        raise not_stored(exc) from exc
    except BaseException:
        _discard(receiver, folder)
        raise
    return receiver.files


def _ended(parser: MultipartParser) -> bool:
    """The closing boundary was read (a body cut short is not)."""
    return bool(parser.state == MultipartState.END)


def _too_large(limits: ServiceSettings) -> str:
    return (
        f"the upload is over the limit of {limits.max_upload_bytes} bytes per request "
        "(LITRAG_SERVICE__MAX_UPLOAD_BYTES): send the files in several uploads"
    )


def _discard(receiver: _Receiver, folder: Path) -> None:
    receiver.close_all()
    shutil.rmtree(folder, ignore_errors=True)
