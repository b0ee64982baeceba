"""LeadPulse: real-time sales metrics from a CRM event stream.

Packages, from the bottom of the house up (each imports only those below it): ``fold`` (the pure
core) < ``state`` < ``metrics`` < ``ingest`` < ``outputs``, ``exporter``, ``api``, ``kafka`` <
``simulator``, ``importer`` < ``worker`` < ``cli``. ``config`` is read by all of them.
"""
