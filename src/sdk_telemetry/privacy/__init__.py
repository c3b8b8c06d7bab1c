"""Privacy: what may leave the process. The scrubbing rules and the scrubber, sampling of
successful invocations, and explicit consent."""
