"""The ``csms-kit serve`` CSMS and the ``csms-kit demo`` run (not part of the library API)."""
