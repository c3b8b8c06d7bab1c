"""`python -m sdk_telemetry` is the `sdk-telemetry` command."""

from sdk_telemetry.cli import main

main()
