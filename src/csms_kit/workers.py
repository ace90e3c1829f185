"""Several ``csms-kit serve`` worker processes on one port: start, supervise, stop them.

Each worker is ``python -m csms_kit.cli serve ... --reuse-port``, a process of its own
listening on the same port with ``SO_REUSEPORT`` (the kernel spreads the connections
over them), holding its own stations and sharing the registry with the others.

:class:`WorkerGroup` runs them from the parent. It never installs a signal handler:
the application (the ``csms-kit`` command) does, and tells the group with
:meth:`WorkerGroup.stop`, which is safe to call from a signal handler.

A worker that dies is logged and not restarted: the kernel hands its share of new
connections to the workers still listening, its stations reconnect there, and the
group's exit status (1) tells the supervisor (systemd, Kubernetes, ...) that something
failed once the group stops.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["WorkerGroup", "worker_command"]

logger = logging.getLogger("csms_kit.workers")


def worker_command(
    *,
    host: str,
    port: int,
    registry: str,
    node_id: str,
    lease_ttl: float,
    verbose: bool = False,
) -> list[str]:
    """The command line of one worker: ``csms-kit serve`` sharing the port, watching us."""
    command = [
        sys.executable, "-m", "csms_kit.cli", "serve",
        "--host", host, "--port", str(port), "--registry", registry,
        "--node-id", node_id, "--lease-ttl", repr(lease_ttl),
        "--reuse-port", "--parent-pid", str(os.getpid()),
    ]  # fmt: skip
    if verbose:
        command.append("--verbose")
    return command


def _describe(status: int) -> str:
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


@dataclass
class _Worker:
    number: int
    name: str
    process: subprocess.Popen[bytes]
    status: int | None = None
    failed: bool = False


class WorkerGroup:
    """Worker processes started from ``commands``, one each; :meth:`run` supervises them.

    :meth:`stop` (safe in a signal handler) forwards the signal to every worker still
    running; a second :meth:`stop`, or ``stop_timeout`` seconds without every worker
    gone, kills the rest with ``SIGKILL``. :meth:`run` returns 0 when every worker
    ended well (status 0, or by the signal it was forwarded), else 1.
    """

    def __init__(
        self,
        commands: Sequence[Sequence[str]],
        *,
        names: Sequence[str] | None = None,
        stop_timeout: float = 30.0,
        poll_interval: float = 0.1,
    ) -> None:
        if not commands:
            raise ValueError("a worker group needs at least one command")
        if names is not None and len(names) != len(commands):
            raise ValueError("give one name per command")
        self.commands = [list(command) for command in commands]
        self.names = list(names) if names is not None else [""] * len(commands)
        self.stop_timeout = stop_timeout
        self.poll_interval = poll_interval
        self._workers: list[_Worker] = []
        self._requests: list[int] = []  # appended to by stop(), maybe in a signal handler
        self._forwarded: int | None = None
        self._stop_deadline: float | None = None

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask the workers to stop with ``signum``; only records it (signal-handler safe)."""
        self._requests.append(signum)

    def run(self) -> int:
        """Start the workers, wait until every one has ended; the exit status (0 or 1)."""
        try:
            self._start()
            while any(worker.status is None for worker in self._workers):
                self._handle_requests()
                self._reap()
                if self._stop_deadline is not None and time.monotonic() > self._stop_deadline:
                    logger.error(
                        "workers still running %g s after stop: killing them", self.stop_timeout
                    )
                    self._stop_deadline = None
                    self._kill()
                time.sleep(self.poll_interval)
        finally:
            self._kill()
            for worker in self._running():
                worker.status = worker.process.wait()
                worker.failed = True
        return 1 if any(worker.failed for worker in self._workers) else 0

    def _start(self) -> None:
        for number, (command, name) in enumerate(
            zip(self.commands, self.names, strict=True), start=1
        ):
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
            self._workers.append(_Worker(number, name, process))
            node = f", node {name}" if name else ""
            logger.info("worker %d (pid %d%s) started", number, process.pid, node)

    def _handle_requests(self) -> None:
        while self._requests:
            signum = self._requests.pop(0)
            if self._forwarded is None:
                self._forwarded = signum
                self._stop_deadline = time.monotonic() + self.stop_timeout
                logger.info("stopping the workers (%s)", signal.Signals(signum).name)
                for worker in self._running():
                    worker.process.send_signal(signum)
            else:
                logger.warning("asked again to stop: killing the workers")
                self._stop_deadline = None
                self._kill()

    def _reap(self) -> None:
        for worker in self._running():
            status = worker.process.poll()
            if status is None:
                continue
            worker.status = status
            # stopped well: status 0, or the very signal it was forwarded (before its
            # own handlers were set up)
            stopped = self._forwarded is not None and status in (0, -self._forwarded)
            worker.failed = not stopped
            label = f"worker {worker.number} (pid {worker.process.pid})"
            if stopped:
                logger.info("%s stopped", label)
            elif self._forwarded is None:
                logger.error(
                    "%s %s; not restarted, %d other worker(s) keep serving",
                    label,
                    _describe(status),
                    len(self._running()),
                )
            else:
                logger.error("%s %s while stopping", label, _describe(status))

    def _kill(self) -> None:
        for worker in self._running():
            if worker.process.poll() is None:
                worker.process.kill()

    def _running(self) -> list[_Worker]:
        return [worker for worker in self._workers if worker.status is None]
