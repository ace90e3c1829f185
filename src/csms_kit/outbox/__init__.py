"""A durable outbox: commands for stations, delivered when they are back.

See :mod:`csms_kit.outbox.delivery` for the semantics, and the docs page "Outbox".
"""

from csms_kit.outbox.delivery import Outbox
from csms_kit.outbox.requests import Deliverable, RawCall, deliverable_from_dict
from csms_kit.outbox.sqlite import SqliteStore
from csms_kit.outbox.store import OutboxStore, OutboxStoreError, store_from_url
from csms_kit.outbox.submission import Status, Submission

__all__ = [
    "Deliverable",
    "Outbox",
    "OutboxStore",
    "OutboxStoreError",
    "RawCall",
    "SqliteStore",
    "Status",
    "Submission",
    "deliverable_from_dict",
    "store_from_url",
]
