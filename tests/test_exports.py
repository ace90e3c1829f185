"""The public surface: curated, importable, exported once."""

from __future__ import annotations

import csms_kit


def test_all_is_sorted_unique_and_importable() -> None:
    """Every name in __all__ exists; the list has no duplicates."""
    names = csms_kit.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(csms_kit, name), name


def test_nothing_public_is_left_out() -> None:
    """Every public attribute of the package is in __all__ (submodules aside)."""
    import types

    public = {
        name
        for name, value in vars(csms_kit).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(csms_kit.__all__) - {"__version__"}


def test_version_matches_metadata() -> None:
    """__version__ agrees with the installed distribution."""
    from importlib.metadata import version

    assert csms_kit.__version__ == version("csms-kit")


def test_py_typed_is_shipped() -> None:
    """The package ships its py.typed marker."""
    from importlib.resources import files

    assert files("csms_kit").joinpath("py.typed").is_file()


def test_each_name_is_exported_from_one_place() -> None:
    """No name of the top-level API is exported again by csms_kit.protocol."""
    import csms_kit.protocol

    assert set(csms_kit.__all__).isdisjoint(csms_kit.protocol.__all__)


def test_names_for_extenders_stay_out_of_the_top_level() -> None:
    """Transport, hook plumbing and identity parsing live in their modules, not at the top."""
    for name in ("Hooks", "InvalidIdentity", "TransportClosed", "Transport", "WebSocketTransport"):
        assert name not in csms_kit.__all__ and not hasattr(csms_kit, name), name
    from csms_kit.exceptions import TransportClosed
    from csms_kit.hooks import Hooks
    from csms_kit.identity import InvalidIdentity
    from csms_kit.transport import Transport
    from csms_kit.websocket import WebSocketTransport

    assert all((TransportClosed, Hooks, InvalidIdentity, Transport, WebSocketTransport))


def test_no_name_is_confused_with_the_ocpp_package() -> None:
    """Our error for answering a CALL is RpcError, not a near-twin of ocpp's OCPPError."""
    assert "OcppError" not in csms_kit.__all__ and "RpcError" in csms_kit.__all__
