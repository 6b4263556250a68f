"""The operator's one receiver of object-store event notifications, shared by every DRReplica.

Centres post to `http://HOST:PORT/events/<token>`, the token being the `eventToken` key of the centre's
credentials Secret; centres without a token are polled instead.
"""

from __future__ import annotations

import threading

from .. import settings
from ..metrics import notifications
from ..replication.events import EventReceiver

_lock = threading.Lock()
_receiver: EventReceiver | None = None


def receiver() -> EventReceiver | None:
    """The receiver, started on first use on DATACLOUD_EVENTS_ADDRESS:DATACLOUD_EVENTS_PORT; None if unset."""
    global _receiver
    wanted = settings.current()
    if wanted.events_port is None:
        return None
    with _lock:
        if _receiver is None:
            started = _receiver = EventReceiver(wanted.events_address, wanted.events_port).start()
            notifications.register(lambda: (started.accepted, started.rejected, started.misnamed))
        return _receiver
