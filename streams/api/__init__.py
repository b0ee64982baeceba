"""The HTTP API (SPEC §4): routes, their models, parameters, errors and the bearer token.

May import ``streams.metrics``, ``streams.state`` and ``streams.fold``; the worker wires it in.
"""
