"""The qdrant-client backend against real failing servers on 127.0.0.1 (real sockets, no mocks):
refused connections, a server that never answers, 5xx, 401, and an upsert that fails halfway.
Each must end in a StoreError that names the URL and says what happened, quickly; the CLI exits 2
and the service answers 503 when the server cannot be reached."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from core.chunking import chunk_document
from core.cli import _load_commands, app
from core.config import Settings, StoreSettings, get_settings
from core.errors import ConfigError, StoreError
from core.schemas import Document, DocumentMeta
from core.sparse import SparseEncoder
from core.store import PointData, StoreMeta, meta_for, open_store
from core.store.client import ClientStore
from ingest.parsers.base import Source
from ingest.parsers.ctgov import parse_ctgov_json

REPO = Path(__file__).resolve().parents[2]
TRIAL = REPO / "samples" / "ctgov" / "NCT04267848.json"
Respond = Callable[[str, str, bytes], tuple[int, Any]]


def _ok(result: Any) -> tuple[int, Any]:
    return 200, {"result": result, "status": "ok", "time": 0.0}


def _collection_calls(method: str, path: str, body: bytes) -> tuple[int, Any] | None:
    """Answers to the calls that create collection 'faults' (None for any other call)."""
    if path.endswith("/exists"):
        return _ok({"exists": False})
    if path.endswith("/index"):
        return _ok({"operation_id": 1, "status": "completed"})
    if method == "PUT" and path == "/collections/faults":
        return _ok(True)
    return None


def _accept_collection(method: str, path: str, body: bytes) -> tuple[int, Any]:
    return _collection_calls(method, path, body) or (404, {"status": {"error": "stub"}})


class StubServer:
    """An HTTP/1.1 server on 127.0.0.1 whose answers come from ``respond(method, path, body)``."""

    def __init__(self, respond: Respond, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                stub.requests.append((self.command, self.path, body))
                status, payload = respond(self.command, urlsplit(self.path).path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """Accepts TCP connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def _unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def meta(embedder) -> StoreMeta:  # type: ignore[no-untyped-def]
    settings = Settings()
    return meta_for(settings, embedder.name, embedder.dim, SparseEncoder(settings.sparse).name)


def _store(url: str, meta: StoreMeta, **kw: Any) -> ClientStore:
    """A store on ``url`` with settings ``kw`` (a 5 s timeout unless given)."""
    return ClientStore(StoreSettings(url=url, **{"timeout_s": 5, **kw}), "faults", meta)


def test_connection_refused(meta: StoreMeta) -> None:
    url = f"http://127.0.0.1:{_unused_port()}"
    t0 = time.perf_counter()
    with pytest.raises(StoreError) as err:
        open_store(StoreSettings(backend="qdrant", url=url), meta)
    elapsed = time.perf_counter() - t0
    assert f"cannot connect to Qdrant at {url} (is it running?)" in str(err.value)
    assert "3 attempts" in str(err.value)  # store.retries = 2 by default
    assert elapsed < 5, elapsed  # backoff 0.25 s + 0.5 s


def test_timeout(meta: StoreMeta) -> None:
    with SilentServer() as server:
        t0 = time.perf_counter()
        with pytest.raises(StoreError, match=r"timed out after 1 s") as err:
            _store(server.url, meta, timeout_s=1, retries=1)
        elapsed = time.perf_counter() - t0
    assert server.url in str(err.value)
    assert len(server.accepted) == 2  # the first try and one retry
    assert 2 <= elapsed < 5, elapsed


def test_server_error_names_the_status(meta: StoreMeta) -> None:
    def respond(method: str, path: str, body: bytes) -> tuple[int, Any]:
        return 500, {"status": {"error": "Service internal error: No space left on device"}}

    with StubServer(respond) as server, pytest.raises(StoreError) as err:
        _store(server.url, meta)
    msg = str(err.value)
    assert f"Qdrant at {server.url} answered HTTP 500: Service internal error: No space" in msg
    assert len(server.requests) == 3  # 5xx is retried (store.retries = 2)


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_authentication_failure(meta: StoreMeta) -> None:
    def respond(method: str, path: str, body: bytes) -> tuple[int, Any]:
        return 401, b"Must provide an API key or an Authorization bearer token"

    with StubServer(respond) as server:
        with pytest.raises(StoreError) as err:
            _store(server.url, meta, api_key="wrong-key")
        assert f"Qdrant at {server.url} refused the API key (HTTP 401)" in str(err.value)
        assert "authentication failed, check the API key" in str(err.value)
        assert len(server.requests) == 1  # never retried
        with pytest.raises(StoreError, match=r"requires an API key \(HTTP 401\)"):
            _store(server.url, meta)
        assert server.requests[0][1] == "/collections/faults/exists"


@pytest.fixture(scope="module")
def five_points(embedder) -> list[PointData]:  # type: ignore[no-untyped-def]
    """The first five chunks (ordinals 0-4) of a real trial, really embedded."""
    settings = Settings()
    (doc,) = list(parse_ctgov_json(Source(str(TRIAL), TRIAL.read_bytes())))
    assert isinstance(doc, Document)
    chunks = chunk_document(doc, settings.chunking, embedder.count_tokens)[:5]
    meta = DocumentMeta.of(doc, len(chunks))
    texts = [c.embed_text for c in chunks]
    sparse = SparseEncoder(settings.sparse).embed_documents(texts)
    dense = embedder.embed(texts).tolist()
    return [PointData(c, meta, d, s) for c, d, s in zip(chunks, dense, sparse, strict=True)]


@pytest.mark.parametrize("parallel", [1, 2])
def test_no_partial_batch(meta: StoreMeta, five_points: list[PointData], parallel: int) -> None:
    """A server that takes the collection and the first upsert request, then fails every one."""
    lock = threading.Lock()
    upserts: list[list[int]] = []

    def respond(method: str, path: str, body: bytes) -> tuple[int, Any]:
        if path.endswith("/points") and method == "PUT":
            ordinals = [p["payload"]["ordinal"] for p in json.loads(body)["points"]]
            with lock:
                upserts.append(ordinals)
                first = len(upserts) == 1
            if first:
                return _ok({"operation_id": 2, "status": "completed"})
            return 500, {"status": {"error": "Service internal error: disk full"}}
        return _accept_collection(method, path, body)

    with StubServer(respond) as server:
        store = _store(server.url, meta, upsert_batch=2, retries=0, parallel=parallel)
        try:
            with pytest.raises(StoreError) as err:
                store.upsert(five_points)
        finally:
            store.close()
    msg = str(err.value)
    assert "answered HTTP 500: Service internal error: disk full" in msg
    assert "2 of 5 points of this batch were written before the failure" in msg
    assert "the batch is not stored" in msg
    # chunk 0 (what re-ingestion checks) goes last: after a failure it was never sent
    assert sorted(o for req in upserts for o in req) == [1, 2, 3, 4]
    assert len(upserts) == 2


# -- TLS ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1 (key and certificate in one PEM file)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    d = tmp_path_factory.mktemp("tls")
    args = "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1".split()
    args += ["-addext", "subjectAltName=IP:127.0.0.1"]
    args += ["-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")]
    subprocess.run(
        ["openssl", *args],
        check=True,
        capture_output=True,
    )
    return d


def _tls(certificate: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    return ctx


def test_tls_verify(meta: StoreMeta, certificate: Path) -> None:
    with StubServer(_accept_collection, tls=_tls(certificate)) as server:
        with pytest.raises(StoreError, match="TLS certificate of Qdrant at https://127") as err:
            _store(server.url, meta, retries=0)
        assert "LITRAG_STORE__TLS_VERIFY" in str(err.value)
        n = len(server.requests)
        _store(server.url, meta, tls_verify=certificate / "cert.pem").close()  # our CA bundle
        _store(server.url, meta, tls_verify=False).close()  # no check at all
        assert len(server.requests) > n and server.requests[n][1].endswith("/exists")


def test_tls_to_a_plain_server(meta: StoreMeta) -> None:
    with StubServer(_accept_collection) as server:
        url = server.url.replace("http://", "https://")
        with pytest.raises(StoreError, match=r"TLS handshake with Qdrant at https://.* failed"):
            _store(url, meta, retries=0)


def test_tls_settings_refused(meta: StoreMeta, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the CA bundle"):
        _store("https://127.0.0.1:1", meta, tls_verify=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="contradicts the URL"):
        _store("https://127.0.0.1:1", meta, https=False)
    assert Settings.model_validate({"store": {"tls_verify": "false"}}).store.tls_verify is False
    assert Settings.model_validate({"store": {"tls_verify": "/ca.pem"}}).store.tls_verify == Path(
        "/ca.pem"
    )


# -- the entry points ---------------------------------------------------------------------------
@pytest.fixture
def unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """LITRAG_STORE__* aimed at a port nobody listens on."""
    url = f"http://127.0.0.1:{_unused_port()}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITRAG_STORE__BACKEND", "qdrant")
    monkeypatch.setenv("LITRAG_STORE__URL", url)
    monkeypatch.setenv("LITRAG_STORE__RETRIES", "0")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_cli_ingest_exits_2(unreachable: str, embedder) -> None:  # type: ignore[no-untyped-def]
    if not app.registered_commands:
        _load_commands()
    result = CliRunner().invoke(app, ["ingest", str(TRIAL)])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())  # rich wraps long lines
    assert f"cannot connect to Qdrant at {unreachable} (is it running?)" in out


def test_service_answers_503(unreachable: str, embedder) -> None:  # type: ignore[no-untyped-def]
    from service.app import create_app

    with TestClient(create_app(Settings())) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        assert f"cannot connect to Qdrant at {unreachable}" in ready.json()["store"]
        res = client.post("/v1/search", json={"query": "mRNA cancer vaccine"})
        assert res.status_code == 503
        error = res.json()["error"]
        assert error["type"] == "store_unavailable"
        assert f"cannot connect to Qdrant at {unreachable}" in error["message"]
