"""The export pipeline: the processor sdk-telemetry adds to a TracerProvider, the privacy
preparation of each finished span, the span and event batchers on their shared batching core,
exporters by name, queue metrics and the one-line health summary."""
