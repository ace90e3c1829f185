"""Helpers for the cluster tests that run real processes: ports, start-up, stopping."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
#: Seconds a process gets to stop when told, before it is killed.
STOP_TIMEOUT = 5.0


def free_port() -> int:
    """A TCP port free on the loopback address now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_listening(
    port: int,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Return once something accepts on ``port``.

    Fails if ``process`` exits first (quoting ``log``), or after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return
        if process is not None and process.poll() is not None:
            output = log.read_text(errors="replace") if log is not None else ""
            raise AssertionError(
                f"the process exited ({process.returncode}) before listening\n{output}"
            )
        assert time.monotonic() < deadline, f"nothing listens on port {port} after {timeout:g} s"
        time.sleep(0.05)


def start_listening(
    command: list[str], port: int, log: Path, *, cwd: Path | None = None, timeout: float = 10.0
) -> subprocess.Popen[bytes]:
    """Start ``command``, a server for ``port``; return its process once it listens there.

    Its output is appended to ``log`` (quoted if it exits first); it is killed if it does
    not listen within ``timeout`` seconds.
    """
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_listening(port, timeout, process, log)
    except BaseException:
        kill(process)
        raise
    return process


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process``, as a crash would end it (no goodbye to its clients); reap it."""
    if process.poll() is None:
        process.kill()
    process.wait()


def stop(process: subprocess.Popen[bytes]) -> int:
    """Terminate ``process``; kill it if it does not stop in time. Its exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
