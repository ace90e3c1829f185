"""OCPP security profiles: Basic auth (1 and 2), TLS (2 and 3), client certificates (3)."""

from csms_kit.security.basic import FailureThrottle, basic_auth
from csms_kit.security.passwords import hash_authorization_key, hash_password, verify_password
from csms_kit.security.tls import (
    OCPP_TLS12_CIPHERS,
    certificate_auth,
    common_name,
    server_ssl_context,
    subject_field,
)

__all__ = [
    "OCPP_TLS12_CIPHERS",
    "FailureThrottle",
    "basic_auth",
    "certificate_auth",
    "common_name",
    "hash_authorization_key",
    "hash_password",
    "server_ssl_context",
    "subject_field",
    "verify_password",
]
