"""/metrics: the collector that renders the catalog for the partitions this worker owns, the
series view that follows changed cells between scrapes, and the exposition text writer.

May import ``streams.metrics``, ``streams.state``, ``streams.fold`` and ``streams.config``.
"""
