"""A simulated station under OCPP security profiles 1 to 3, against csms_kit's hooks."""

from __future__ import annotations

import pytest

from csms_kit.exceptions import ConnectFailed
from csms_kit.security import (
    basic_auth,
    certificate_auth,
    hash_authorization_key,
    hash_password,
    server_ssl_context,
)
from csms_kit.simulator import ConnectOptions, SimulatedStation, simulate_station
from tests.security.conftest import ClientContext, ServerPki, StationPki
from tests.simulator.conftest import recording_server

COST = 2**10
PASSWORD = "Grüße-aus-Köln-🔌-Ladepunkt-7"
#: A 1.6 AuthorizationKey of 20 raw bytes, not all of them text.
KEY = bytes.fromhex("00ff3a7f80c3a9e282ac0d0a20deadbeef010203")
STORED = {"CP-201": hash_password(PASSWORD, n=COST), "CP-16": hash_authorization_key(KEY, n=COST)}


async def test_profile_1_basic_auth() -> None:
    """ws:// with Basic auth (username = identity): right password boots, wrong gets 401."""
    server, csms = recording_server(authenticate=basic_auth(STORED.get, profile=1))
    async with server:
        options = ConnectOptions(password=PASSWORD)
        async with simulate_station(csms.url, "CP-201", "2.0.1", options=options) as station:
            assert station.booted
        options = ConnectOptions(password=KEY)
        async with simulate_station(csms.url, "CP-16", "1.6", options=options) as station:
            assert station.booted
        wrong = ConnectOptions(password="wrong-password-1234")
        with pytest.raises(ConnectFailed) as refused:
            await SimulatedStation(csms.url, "CP-201", "2.0.1", options=wrong).start()
        assert (refused.value.kind, refused.value.status) == ("handshake", 401)
    csms.check()


async def test_profile_2_tls_and_basic_auth(
    server_pki: ServerPki, client_context: ClientContext
) -> None:
    """wss:// with the CSMS's CA trusted and Basic auth."""
    server, csms = recording_server(
        authenticate=basic_auth(STORED.get, profile=2),
        ssl=server_ssl_context(server_pki.certificates),
    )
    async with server:
        url = f"wss://127.0.0.1:{server.port}"
        options = ConnectOptions(password=PASSWORD, ssl=client_context())
        async with simulate_station(url, "CP-201", "2.1", options=options) as station:
            await station.charge(samples=1, interval=0)
        with pytest.raises(ConnectFailed) as untrusted:
            async with simulate_station(
                url, "CP-201", "2.1", options=ConnectOptions(password=PASSWORD)
            ):
                pass
        assert untrusted.value.kind == "tls"
    csms.check()


async def test_profile_3_client_certificate(
    server_pki: ServerPki,
    station_pki: StationPki,
    wrong_pki: StationPki,
    client_context: ClientContext,
) -> None:
    """Mutual TLS: a certificate for the identity boots; one from an unknown CA is refused."""
    context = server_ssl_context(server_pki.certificates, client_ca=station_pki.ca_file)
    server, csms = recording_server(authenticate=certificate_auth(), ssl=context)
    async with server:
        url = f"wss://127.0.0.1:{server.port}"
        good = ConnectOptions(ssl=client_context(certificate=station_pki.issue("CP-3")))
        async with simulate_station(url, "CP-3", "2.0.1", options=good) as station:
            assert station.booted
        bad = ConnectOptions(ssl=client_context(certificate=wrong_pki.issue("CP-3")))
        with pytest.raises(ConnectFailed) as refused:
            await SimulatedStation(url, "CP-3", "2.0.1", options=bad).start()
        assert refused.value.kind in ("tls", "handshake", "refused")
    csms.check()
