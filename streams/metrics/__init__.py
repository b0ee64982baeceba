"""The metric catalog (each metric defined once) and the figures computed from the aggregates,
for /metrics and the HTTP API alike.

May import ``streams.fold``, ``streams.state`` and ``streams.config``.
"""
