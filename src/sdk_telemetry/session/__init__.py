"""Sessions: the session of a telemetry handle, its event log (events and exceptions as log
records) and exception capture."""
