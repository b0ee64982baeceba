"""Publishing to the output topics: lead responses and alerts (SPEC §4), and dead letters.

May import ``streams.ingest``, ``streams.state`` and ``streams.fold``.
"""
