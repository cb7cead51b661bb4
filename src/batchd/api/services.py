"""The app's services, one typed object handed to every view: `services.of(request)`."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request

from batchd.api.keyring import Keyring
from batchd.config import Settings
from batchd.engine import Dispatcher
from batchd.engine.router import Router
from batchd.metrics import Metrics
from batchd.store import Store


@dataclasses.dataclass(kw_only=True)
class Services:
    """What the views use. `engine` and `router` are set by the server's lifespan while it runs
    them; they are None before it starts, once it stops, and in an app built without an engine."""

    settings: Settings
    store: Store
    metrics: Metrics = dataclasses.field(default_factory=Metrics)
    engine: Dispatcher | None = None
    router: Router | None = None
    keyring: Keyring = dataclasses.field(init=False)  #: the accepted keys (api/keyring.py)

    def __post_init__(self) -> None:
        self.keyring = Keyring(self.settings, self.store)


def of(request: Request) -> Services:
    """The services of the app serving `request` (set by `batchd.app.create_app`)."""
    found: Services = request.app.state.services
    return found
