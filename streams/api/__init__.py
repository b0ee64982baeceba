"""The HTTP API (SPEC §4): routes, their models, parameters, errors and the bearer token."""
