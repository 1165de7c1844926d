"""The real service in a child process (``litrag serve``), for benchmarks of its latency and memory.

A child process, not a thread: its ``VmRSS`` is the server's alone, without the client's threads
and buffers, and the client does not share the server's GIL. The store comes from the environment
(``LITRAG_STORE__PATH`` …) as for any serve; :func:`store_copies` gives each of several servers
its own copy (an embedded Edge store is opened by one process at a time).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import httpx

LITRAG = Path(sys.executable).with_name("litrag")


def free_port() -> int:
    """An ephemeral port on loopback, free now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def exit_on_sigterm() -> None:
    """Make SIGTERM (``kill``, ``timeout``) leave through the ``with`` blocks, so the servers
    started and the store copies made are stopped and removed."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def parse_variants(specs: list[str]) -> list[tuple[str, dict[str, str]]]:
    """``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE`` → (name, server environment); none given: one
    variant named ``service`` with the environment as it is."""
    variants: list[tuple[str, dict[str, str]]] = []
    for spec in specs or ["service"]:
        name, _, rest = spec.partition(":")
        env = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
        variants.append((name, env))
    return variants


@contextmanager
def store_copies(names: list[str]) -> Iterator[dict[str, dict[str, str]]]:
    """For each name, the environment of a server on its own copy of ``$LITRAG_STORE__PATH``
    (the store itself when there is one name); the copies are removed afterwards."""
    if len(names) < 2:
        yield {n: {} for n in names}
        return
    source = Path(os.environ.get("LITRAG_STORE__PATH", ".litrag"))
    with tempfile.TemporaryDirectory(prefix="litrag-bench-") as tmp:
        envs = {}
        for name in names:
            copy = Path(tmp) / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            # the lock file is the source server's business: not copied
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("lock"))
            envs[name] = {"LITRAG_STORE__PATH": str(copy)}
        yield envs


def metric(text: str, name: str) -> float:
    """One unlabelled sample of a Prometheus text exposition (0 when absent)."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def proc_status(pid: int, field: str) -> int:
    """A numeric field of ``/proc/<pid>/status``: ``VmRSS``, ``RssAnon``, ``VmHWM`` (kB)…"""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Server:
    """``litrag serve`` on 127.0.0.1:<free port>; ready when ``/readyz`` answers 200."""

    def __init__(self, env: dict[str, str] | None = None, start_timeout: float = 600) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **(env or {})}
        self._timeout = start_timeout
        fd, name = tempfile.mkstemp(prefix="litrag-serve-", suffix=".log")
        os.close(fd)
        self._log = Path(name)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.proc is not None
        return self.proc.pid

    def rss_mib(self) -> float:
        """Resident memory of the server now, MiB."""
        return proc_status(self.pid, "VmRSS") / 1024

    def anon_mib(self) -> float:
        """Anonymous resident memory (heap, arenas; not the store's mapped files), MiB."""
        return proc_status(self.pid, "RssAnon") / 1024

    def hwm_mib(self) -> float:
        """Peak resident memory of the server so far, MiB."""
        return proc_status(self.pid, "VmHWM") / 1024

    def cpu_s(self) -> float:
        """CPU seconds the server has used (user + system): the fair cost on a shared machine."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def threads(self) -> int:
        """OS threads of the server now."""
        return proc_status(self.pid, "Threads")

    def log_tail(self, n: int = 4000) -> str:
        """The end of the server's stdout + stderr."""
        return self._log.read_bytes()[-n:].decode(errors="replace")

    def __enter__(self) -> Server:
        cmd = [str(LITRAG), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self._log.open("wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(cmd, env=self._env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self._timeout
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while True:
                if self.proc.poll() is not None:
                    raise SystemExit(f"server exited {self.proc.returncode}:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise SystemExit(f"server not ready in {self._timeout:.0f} s")
                try:
                    ready = client.get("/readyz")
                except httpx.TransportError:
                    time.sleep(0.3)  # still loading the models
                    continue
                if ready.status_code == 200:
                    return self
                if ready.status_code == 503 and "store" in ready.json():
                    self.__exit__(None, None, None)
                    raise SystemExit(f"store not ready: {ready.json()}")
                time.sleep(0.3)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn shuts down and the store closes
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.unlink(missing_ok=True)
