"""Prefect flows, the ``pmo`` CLI and their wiring.

Prefect reads its settings when first imported, so the defaults pmo-sync needs are set here, before any flow
module imports it: no telemetry (docs/architecture.md, "Running it"), and time for a fresh machine's first
ephemeral server, which migrates its database and takes longer than Prefect's 20 s default. An explicit
environment variable always wins.
"""

import os

for _name, _value in (
    ("DO_NOT_TRACK", "1"),
    ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
    ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"),
):
    os.environ.setdefault(_name, _value)
