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
