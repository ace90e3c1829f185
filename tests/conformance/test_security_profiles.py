"""The security-profile cases against csms_kit's server for profiles 1, 2 and 3 (real TLS),
and against lax servers that each case must catch."""

from __future__ import annotations

import ssl
import warnings
from typing import Any

import pytest

from csms_kit import serve
from csms_kit.conformance import Outcome, Report, Target, run_suite
from csms_kit.demo.csms import DemoCsms
from csms_kit.security import server_ssl_context
from csms_kit.versions import OcppVersion
from tests.conformance.conftest import (
    FAST,
    HOST,
    PASSWORD,
    STATION,
    ServerPki,
    StationPki,
    csms_kit_server,
    profile_options,
    profile_target,
)

V201 = OcppVersion.V201
BASIC = {
    "basic-auth-valid",
    "basic-auth-wrong-password",
    "basic-auth-username-mismatch",
    "basic-auth-missing",
}
TLS = {"tls-below-1.2", "tls-cipher-suites"}
MUTUAL = {
    "client-cert-valid",
    "client-cert-missing",
    "client-cert-unknown-ca",
    "client-cert-other-identity",
}
#: Cases of the main suite run with the profile's credentials, to show they work there.
GENERAL = {"boot-notification", "frame-not-json", "action-unknown"}
APPLIES = {1: BASIC, 2: BASIC | TLS, 3: TLS | MUTUAL}


def outcomes(report: Report) -> dict[str, Outcome]:
    return {result.case.id: result.outcome for result in report.results}


@pytest.mark.parametrize("profile", [1, 2, 3])
async def test_csms_kit_passes_its_profile(
    profile: int,
    server_pki: ServerPki,
    station_pki: StationPki,
    station_files: tuple[str, str],
    password_hash: str,
) -> None:
    """Every case of the profile passes; the other profiles' cases are skipped."""
    options = profile_options(profile, server_pki, password_hash, station_pki.ca_file)
    async with csms_kit_server(**options) as url:
        target = profile_target(profile, url, server_pki, station_files)
        report = await run_suite(target, [V201], cases=BASIC | TLS | MUTUAL | GENERAL)
    assert report.ok, report.table()
    assert report.profile == profile
    seen = outcomes(report)
    for case in APPLIES[profile] | GENERAL:
        assert seen[case] is Outcome.PASS, f"{case}: {report.table()}"
    for case in (BASIC | TLS | MUTUAL) - APPLIES[profile]:
        assert seen[case] is Outcome.SKIP


async def test_a_csms_that_takes_any_password_fails() -> None:
    """Without an authenticate hook, wrong, mismatched and missing credentials get in."""
    async with csms_kit_server() as url:
        report = await run_suite(
            Target(url, basic_auth=(STATION, PASSWORD), **FAST), [V201], cases=BASIC
        )
    reasons = {r.case.id: r.reason for r in report.results if r.outcome is Outcome.FAIL}
    assert reasons == {
        "basic-auth-wrong-password": "accepted a wrong password",
        "basic-auth-username-mismatch": "accepted a username other than the identity",
        "basic-auth-missing": "accepted a station without credentials",
    }


def lax_tls(pki: ServerPki, client_ca: str | None = None) -> ssl.SSLContext:
    """A server context that speaks TLS 1.0 and up, with only an RSA certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.load_cert_chain(*pki.rsa_files)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


async def test_a_lax_tls_server_fails(server_pki: ServerPki, password_hash: str) -> None:
    """TLS 1.1 accepted, and no ECDSA certificate for the ECDHE-ECDSA suites: both named."""
    options: dict[str, Any] = profile_options(2, server_pki, password_hash, "")
    options["ssl"] = lax_tls(server_pki)
    async with csms_kit_server(**options) as url:
        target = profile_target(2, url, server_pki, ("", ""))
        report = await run_suite(target, [V201], cases=TLS)
    reasons = {r.case.id: (r.outcome, r.reason) for r in report.results}
    assert reasons["tls-below-1.2"] == (Outcome.FAIL, "accepted TLS 1.1")
    outcome, reason = reasons["tls-cipher-suites"]
    assert outcome is Outcome.FAIL
    assert reason == (
        "refused TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 with TLS 1.2"
    )


async def test_a_csms_that_ignores_the_certificate_cn_fails(
    server_pki: ServerPki, station_pki: StationPki, station_files: tuple[str, str]
) -> None:
    """Client certificates required, but no check that the CN is the identity: named."""
    context = server_ssl_context(server_pki.certificates, client_ca=station_pki.ca_file)
    async with serve(DemoCsms, HOST, 0, ssl=context) as server:
        url = f"wss://{HOST}:{server.port}/"
        target = profile_target(3, url, server_pki, station_files)
        report = await run_suite(target, [V201], cases=MUTUAL)
    seen = {r.case.id: (r.outcome, r.reason) for r in report.results}
    assert seen["client-cert-other-identity"] == (
        Outcome.FAIL,
        "accepted another station's certificate",
    )
    assert seen["client-cert-valid"][0] is Outcome.PASS
    assert seen["client-cert-missing"][0] is Outcome.PASS  # the TLS layer still refuses
    assert seen["client-cert-unknown-ca"][0] is Outcome.PASS
