"""Servers for the conformance tests: csms_kit's own (plain and profiles 1 to 3).

The PKIs come from the security tests' fixtures (trustme, made at test time).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from csms_kit import serve
from csms_kit.conformance import Target
from csms_kit.demo.csms import DemoCsms
from csms_kit.security import basic_auth, certificate_auth, hash_password, server_ssl_context
from tests.security.conftest import (  # noqa: F401 - fixtures used by the tests here
    ServerPki,
    StationPki,
    server_pki,
    station_pki,
    wrong_pki,
)

HOST = "127.0.0.1"
STATION = "CP-CONFORMANCE"
PASSWORD = "s3cret-Conformance-42"  # 21 characters: a valid 2.0.1 BasicAuthPassword
#: Patience that suits a loopback CSMS; the defaults suit one across a network.
FAST = {"timeout": 2.0, "quiet": 0.3, "call_wait": 0.5}


@contextlib.asynccontextmanager
async def csms_kit_server(**options: Any) -> AsyncIterator[str]:
    """csms_kit's server running the demo CSMS; yield its endpoint URL."""
    scheme = "wss" if options.get("ssl") is not None else "ws"
    async with serve(DemoCsms, HOST, 0, path_prefix="/ocpp", **options) as server:
        yield f"{scheme}://{HOST}:{server.port}/ocpp"


@pytest.fixture(scope="session")
def password_hash() -> str:
    """The stored hash of PASSWORD (cheap parameters: the tests check logic, not cost)."""
    return hash_password(PASSWORD, n=2**10)


def lookup_for(password_hash: str) -> Any:
    def lookup(station_id: str) -> str | None:
        return password_hash if station_id == STATION else None

    return lookup


@pytest.fixture
def station_files(station_pki: StationPki, tmp_path: Path) -> tuple[str, str]:  # noqa: F811
    """The certificate (CN = STATION, signed by the station CA) and key, as files."""
    leaf = station_pki.issue(STATION)
    cert, key = tmp_path / "station.pem", tmp_path / "station.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return str(cert), str(key)


def profile_options(profile: int, pki: ServerPki, password_hash: str, station_ca: str) -> Any:
    """serve() options for security profile 1, 2 or 3."""
    if profile == 1:
        return {"authenticate": basic_auth(lookup_for(password_hash), profile=1)}
    if profile == 2:
        return {
            "ssl": server_ssl_context(pki.certificates),
            "authenticate": basic_auth(lookup_for(password_hash)),
        }
    return {
        "ssl": server_ssl_context(pki.certificates, client_ca=station_ca),
        "authenticate": certificate_auth(),
    }


def profile_target(
    profile: int, url: str, pki: ServerPki, files: tuple[str, str], **options: Any
) -> Target:
    """The checker's options for a CSMS of security profile 1, 2 or 3."""
    settings: dict[str, Any] = {**FAST, **options}
    if profile in (1, 2):
        settings["basic_auth"] = (STATION, PASSWORD)
    if profile in (2, 3):
        settings["cafile"] = pki.ca_file
    if profile == 3:
        settings.update(cert=files[0], key=files[1], identity=STATION)
    return Target(url, **settings)
