"""One worker wired together: the Faust app, the engine that owns tables, processor, aggregates,
exporter and API, and the runner that provisions topics and starts it.

The top of the house: may import every other package; nothing imports it but ``streams.cli``.
"""
