"""The conformance cases, one module per concern; importing this registers them in order."""

from csms_kit.conformance.checks import (  # noqa: F401 - imported to register their cases
    actions,
    framing,
    handshake,
    identity,
    security,
    session,
)
