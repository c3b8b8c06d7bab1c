"""Instrumentation: which callables `instrument()` wraps (targets), how each call runs (the sync,
async and generator call paths), the span of one call, what is recorded of an error, the
invocation metrics, and the post-import hook for targets named by import path."""
