"""A demo SDK package that embeds sdk-telemetry, the `acme` of the README's examples.

`AcmeClient` is instrumented by the package itself, as an SDK that ships with telemetry would
be; its `create()` also records a `client.created` event. `acme.tools` and `acme.files` are
the submodules the README instruments by module and by import path. Nothing here makes a
network call.
"""

from __future__ import annotations

import sdk_telemetry
from sdk_telemetry import instrument


class AcmeClient:
    """The client's entry point."""

    def __init__(self, region: str = "eu") -> None:
        self.region = region

    def create(self, name: str) -> dict[str, str]:
        telemetry = sdk_telemetry.current_telemetry() or sdk_telemetry.configure_telemetry(service_name="acme-sdk")
        telemetry.log("client.created", {"region": self.region})
        return {"name": name, "region": self.region}


instrument(AcmeClient)

from acme import files, tools  # noqa: E402  (the submodules, as attributes of the package)

__all__ = ["AcmeClient", "files", "tools"]
