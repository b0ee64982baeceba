"""The pure core: a deal's state folded from its events, its contributions to the aggregates,
its outputs owed, SLA and working time, and the calendar periods.

Imports only itself and ``schemas``: no Faust, no aiohttp, no Kafka, no clock of its own.
"""
