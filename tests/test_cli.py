"""The ``csms-kit`` command's arguments and help, run in-process through ``main``."""

from __future__ import annotations

from typing import Any

import pytest

import csms_kit
from csms_kit import cli

pytestmark = pytest.mark.usefixtures("restore_logging")


def run(argv: list[str]) -> int | str | None:
    """Run ``main(argv)``, which must exit through argparse; return the exit code."""
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    return exited.value.code


@pytest.mark.parametrize("argv", [["--help"], ["serve", "--help"], ["demo", "--help"]])
def test_help_is_plain_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Help is plain text: no reST markup from the module docstring."""
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: csms-kit")
    assert "``" not in out
    assert ":class:" not in out


@pytest.mark.parametrize(
    ("argv", "defaults"),
    [
        (["serve", "--help"], ["(default: 127.0.0.1)", "(default: 9000)"]),
        (["demo", "--help"], ["(default: 300)", "(default: 20.0)", "(default: 2.0)"]),
    ],
)
def test_help_shows_defaults(
    argv: list[str], defaults: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each command's help shows the default of every option that takes a value."""
    assert run(argv) == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for default in defaults:
        assert default in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` prints ``csms-kit <version>`` on stdout and exits 0."""
    assert run(["--version"]) == 0
    assert capsys.readouterr().out == f"csms-kit {csms_kit.__version__}\n"


@pytest.mark.parametrize(
    "argv", [[], ["--bogus"], ["serve", "--bogus"], ["demo", "--stations", "many"], ["launch"]]
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A missing command, an unknown option or a bad value exits 2 with a usage line."""
    assert run(argv) == 2
    assert "usage: csms-kit" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve"], ("127.0.0.1", 9000, "memory://", None, 15.0)),
        (
            ["serve", "--host", "0.0.0.0", "--port", "9100", "-v"],
            ("0.0.0.0", 9100, "memory://", None, 15.0),
        ),
        (
            ["serve", "--registry", "redis://r:6379/0", "--node-id", "n1", "--lease-ttl", "3"],
            ("127.0.0.1", 9000, "redis://r:6379/0", "n1", 3.0),
        ),
    ],
)
def test_serve_passes_its_options(
    argv: list[str], expected: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` runs the demo CSMS with its host, port, registry, node id and lease."""
    calls: list[tuple[Any, ...]] = []

    async def serve_demo(*args: Any, **kwargs: Any) -> None:
        calls.append(args)

    monkeypatch.setattr(cli, "serve_demo", serve_demo)
    assert cli.main(argv) == 0
    assert calls == [expected]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["demo"], (300, 20.0, 2.0)),
        (["demo", "--stations", "5", "--duration", "1.5", "--pace", "0.5"], (5, 1.5, 0.5)),
    ],
)
def test_demo_passes_its_options_and_exit_status(
    argv: list[str], expected: tuple[int, float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``demo`` runs with ``--stations``, ``--duration``, ``--pace``; its status is main's."""
    calls: list[tuple[int, float, float]] = []

    async def demo(stations: int, duration: float, pace: float) -> int:
        calls.append((stations, duration, pace))
        return 1

    monkeypatch.setattr(cli, "demo", demo)
    assert cli.main(argv) == 1
    assert calls == [expected]


@pytest.mark.parametrize("registry", [[], ["--registry", "memory://"]])
def test_workers_with_the_in_memory_registry_are_refused(
    registry: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``serve --workers 2`` on memory:// exits 2 at once, saying why and what to use."""
    assert cli.main(["serve", "--workers", "2", *registry]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("csms-kit serve: --workers 2 needs a registry shared")
    assert "could not be reached from another" in err
    assert "--registry redis://" in err


def test_workers_with_port_0_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """``serve --workers 2 --port 0`` exits 2: each worker would get a port of its own."""
    argv = ["serve", "--workers", "2", "--registry", "redis://localhost/0", "--port", "0"]
    assert cli.main(argv) == 2
    assert "needs a fixed --port" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_workers_must_be_a_positive_count(
    workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--workers`` below 1, or not a number, is a usage error (exit 2)."""
    assert run(["serve", "--workers", workers]) == 2
    assert "argument --workers" in capsys.readouterr().err
