"""``litrag ingest --server URL``: upload files to a running service and follow its ingest job.

Directories are walked as a local ingest walks them (sorted, hidden entries and files that are
never documents left out, those reported as skipped here); archives are sent as they are. The
files go in one streamed ``multipart/form-data`` request (each file read in blocks, never whole),
the job is polled until it ends, and its report lines come back with their local paths.

The job belongs to the service, not to this client: Ctrl-C stops following it (exit 130) and
says how to follow or cancel it; it never cancels it. A job cancelled by someone else
(``DELETE /v1/jobs/{id}``) ends the run with exit 1 and says so.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from rich.console import Console
from rich.markup import escape

from core.jobs import ENDED_STATES, Job, JobCounts, JobEntry
from ingest.discover import non_document, walk
from ingest.progress import IngestView, print_summary

#: The service's API key setting, read here too: one variable for both ends.
API_KEY_ENV = "LITRAG_SERVICE__API_KEY"
EXIT_OK, EXIT_FAILURES, EXIT_USAGE = 0, 1, 2
#: Ctrl-C: the shell's code for a process ended by SIGINT (128 + 2); the job goes on
EXIT_INTERRUPTED = 130
_BLOCK = 256 * 1024
POLL_S = 0.5
#: How long a job is polled through failed requests (service restarting, network down) before
#: this client gives up following it (exit 2; the job goes on in the service).
POLL_RETRY_S = 120.0
_RETRY_MAX_WAIT_S = 10.0


class RemoteError(Exception):
    """The service could not be reached or refused the request (exit code 2). ``transient``:
    a later try may succeed (no answer, 5xx, 429)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class _Lost(Exception):
    """Polling kept failing for POLL_RETRY_S: this client stops following ``job``."""

    def __init__(self, job: Job, error: RemoteError) -> None:
        super().__init__(str(error))
        self.job = job
        self.error = error


class _Detached(Exception):
    """Ctrl-C: this client stopped following; ``job`` (None: the upload was cut short) goes on."""

    def __init__(self, job: Job | None) -> None:
        super().__init__()
        self.job = job


@dataclass(frozen=True)
class Upload:
    """A local file and the name it is uploaded as."""

    name: str
    path: Path
    size: int


def collect(paths: list[Path]) -> tuple[list[Upload], list[JobEntry]]:
    """The files to upload and the report lines decided here (missing paths, unreadable
    folders, files that are never documents), in the order a local ingest meets them."""
    uploads: list[Upload] = []
    entries: list[JobEntry] = []
    used: set[str] = set()

    def add(path: Path, name: str) -> None:
        unique, n = name, 1
        while unique in used:  # two arguments with the same name
            n += 1
            unique = f"{n}-{name}"
        used.add(unique)
        try:
            size = path.stat().st_size
        except OSError as exc:
            entries.append(JobEntry(kind="failure", file=str(path), reason=f"cannot read: {exc}"))
            return
        uploads.append(Upload(unique, path, size))

    for path in paths:
        if not path.exists() and not path.is_symlink():
            entries.append(
                JobEntry(
                    kind="failure",
                    file=str(path),
                    record="path",
                    reason="no such file or directory",
                )
            )
        elif path.is_dir():
            top = path.resolve().name or "root"
            for item in walk(path):
                if not isinstance(item, Path):
                    entries.append(
                        JobEntry(
                            kind="failure", file=item.source, record=item.record, reason=item.reason
                        )
                    )
                elif non_document(item.name):
                    entries.append(
                        JobEntry(kind="skipped", file=str(item), reason="not a document file type")
                    )
                else:
                    add(item, f"{top}/{item.relative_to(path).as_posix()}")
        else:
            add(path, path.name)
    return uploads, entries


def multipart_body(uploads: list[Upload], boundary: str) -> tuple[int, Iterator[bytes]]:
    """The ``multipart/form-data`` body (field ``files``) as its length and a stream of blocks:
    files are opened one at a time, read in blocks."""
    heads = [
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="files"; filename="{_quote(u.name)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        for u in uploads
    ]
    tail = f"--{boundary}--\r\n".encode()
    length = sum(len(h) + u.size + 2 for h, u in zip(heads, uploads, strict=True)) + len(tail)

    def blocks() -> Iterator[bytes]:
        for head, upload in zip(heads, uploads, strict=True):
            yield head
            sent = 0
            with upload.path.open("rb") as fh:
                while block := fh.read(_BLOCK):
                    sent += len(block)
                    if sent > upload.size:
                        break
                    yield block
            if sent != upload.size:
                raise RemoteError(f"{upload.path} changed size while it was being sent")
            yield b"\r\n"
        yield tail

    return length, blocks()


def _quote(name: str) -> str:
    # sent as UTF-8 (RFC 7578 4.2, what browsers do); the service does not percent-decode, so
    # only what would end the quoted string is escaped, and line breaks cannot be sent at all
    return name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")


class Client:
    """The service's job routes over HTTP."""

    def __init__(self, server: str, api_key: str | None, *, timeout: float = 300.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.server = server.rstrip("/")
        self.http = httpx.Client(
            base_url=self.server, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0)
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def upload(self, uploads: list[Upload]) -> Job:
        """POST the files to /v1/documents; the queued job."""
        boundary = uuid.uuid4().hex
        length, body = multipart_body(uploads, boundary)
        response = self._send(
            "POST",
            "/v1/documents",
            content=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length),
            },
        )
        return Job.model_validate(response.json())

    def job(self, job_id: str, entries_from: int = 0) -> Job:
        """The job with its report lines from ``entries_from`` on."""
        response = self._send("GET", f"/v1/jobs/{job_id}", params={"entries_from": entries_from})
        return Job.model_validate(response.json())

    def poll(self, job: Job, entries_from: int) -> Job:
        """:meth:`job`, tried again with growing pauses for up to POLL_RETRY_S while the
        failure may pass (no answer, 5xx, 429); _Lost when it does not."""
        deadline = time.monotonic() + POLL_RETRY_S
        wait = POLL_S
        while True:
            try:
                return self.job(job.id, entries_from)
            except RemoteError as exc:
                left = deadline - time.monotonic()
                if not exc.transient or left <= 0:
                    raise _Lost(job, exc) from exc
                time.sleep(min(wait, left))
                wait = min(wait * 2, _RETRY_MAX_WAIT_S)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise RemoteError(
                f"cannot reach the service at {self.server}: {exc}", transient=True
            ) from exc
        except httpx.TimeoutException as exc:
            raise RemoteError(
                f"the service at {self.server} did not answer in time", transient=True
            ) from exc
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"request to {self.server}{path} failed: {exc}", transient=True
            ) from exc
        if response.status_code >= 400:
            status = response.status_code
            raise RemoteError(
                _refusal(response, self.server), transient=status >= 500 or status == 429
            )
        return response


def _refusal(response: httpx.Response, server: str) -> str:
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text[:300] or response.reason_phrase
    status = response.status_code
    if status == 401:
        return (
            f"the service at {server} refused the API key ({message}): pass --api-key or set "
            f"{API_KEY_ENV}"
        )
    if status == 413:
        return f"the upload is over the service's limits: {message}"
    if status == 429:
        return f"the service's job queue is full: {message}; try again later"
    return f"the service answered {status}: {message}"


def ingest_remote(
    paths: list[Path],
    *,
    server: str,
    api_key: str | None,
    report: Path | None,
    console: Console,
) -> int:
    """Upload ``paths`` to ``server``, follow the job, print its summary; the exit code."""
    uploads, local = collect(paths)
    if len(paths) == sum(1 for e in local if e.record == "path"):
        missing = ", ".join(e.file for e in local)
        console.print(f"[red]error:[/red] no such file or directory: {escape(missing)}")
        return EXIT_USAGE
    report_fh: IO[str] | None = None
    client = Client(server, api_key)
    try:
        if report:
            report_fh = report.open("w", encoding="utf-8")
        job = _follow(client, uploads, local, console, report_fh)
    except _Detached as stop:
        _print_detached(console, client.server, stop.job)
        return EXIT_INTERRUPTED
    except _Lost as lost:
        console.print(
            f"[red]error:[/red] {escape(str(lost.error))}; gave up following after "
            f"{POLL_RETRY_S:.0f} s: the job continues on the server"
        )
        _print_detached(console, client.server, lost.job)
        return EXIT_USAGE
    except RemoteError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return EXIT_USAGE
    except OSError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return EXIT_USAGE
    finally:
        client.close()
        if report_fh:
            report_fh.close()
    counts = _with_local(job.counts if job else JobCounts(), local)
    collection = job.collection if job and job.collection else server
    print_summary(counts, collection, job.points if job else None, report)
    if job is not None and job.state == "failed":
        console.print(f"[red]job {job.id} failed:[/red] {escape(job.error or 'unknown error')}")
        return EXIT_FAILURES
    if job is not None and job.state == "cancelled":
        console.print(
            f"[red]job {job.id} was cancelled[/red] (DELETE /v1/jobs/{job.id}) before it "
            f"finished: {job.counts.stored_documents} documents ({job.counts.chunks} chunks) "
            "were stored until then and stay; run the same command again to ingest the rest"
        )
        return EXIT_FAILURES
    return EXIT_FAILURES if counts.failures else EXIT_OK


def _print_detached(console: Console, server: str, job: Job | None) -> None:
    if job is None:
        console.print(
            "[yellow]interrupted during the upload:[/yellow] no job was queued unless the "
            f"service had received every file (GET {server}/v1/jobs lists the recent ones)"
        )
        return
    url = f"{server}/v1/jobs/{job.id}"
    console.print(
        f"[yellow]stopped following job {job.id}[/yellow]; it goes on in the service.\n"
        f"  follow it: GET {url}\n"
        f"  cancel it: DELETE {url}"
    )


def _with_local(counts: JobCounts, local: list[JobEntry]) -> JobCounts:
    return counts.model_copy(
        update={
            "failures": counts.failures + sum(e.kind == "failure" for e in local),
            "skipped_files": counts.skipped_files + sum(e.kind == "skipped" for e in local),
        }
    )


def _follow(
    client: Client,
    uploads: list[Upload],
    local: list[JobEntry],
    console: Console,
    report_fh: IO[str] | None,
) -> Job | None:
    """Upload, then poll the job until it ends; report lines as they come. None: nothing to
    upload (every input was left out here)."""
    with IngestView(console, report_fh) as view:
        for entry in local:
            view.on_report(entry)
        if not uploads:
            return None
        view.phase("uploading")
        try:
            job = client.upload(uploads)
        except KeyboardInterrupt:
            raise _Detached(None) from None
        # the service lists the files in the order they were sent, under the names it stored
        # them as (made safe, renamed on a clash): its report lines name those
        names = {f.name: str(u.path) for f, u in zip(job.files, uploads, strict=False)}
        console.print(f"job {job.id}: {client.server}/v1/jobs/{job.id}")
        seen = 0
        try:
            while True:
                view.phase(f"job {job.id}: {job.phase or job.state}")
                for entry in job.entries:
                    view.on_report(_localised(entry, names))
                seen = job.entries_from + len(job.entries)
                view.on_progress(_with_local(job.counts, local))
                if job.state in ENDED_STATES:
                    break
                time.sleep(POLL_S)
                job = client.poll(job, entries_from=seen)
            # the job ended with more report lines than one answer holds: read the rest
            while seen < job.entries_total:
                page = client.poll(job, entries_from=seen)
                if not page.entries:
                    break  # the service no longer has them (its report was removed)
                for entry in page.entries:
                    view.on_report(_localised(entry, names))
                seen = page.entries_from + len(page.entries)
            return job
        except KeyboardInterrupt:
            raise _Detached(job) from None


def _localised(entry: JobEntry, names: dict[str, str]) -> JobEntry:
    """``entry`` naming the local file that was uploaded as its ``file``."""
    name, sep, member = entry.file.partition("!")
    local = names.get(name)
    if local is None:
        return entry
    return entry.model_copy(update={"file": f"{local}{sep}{member}"})
