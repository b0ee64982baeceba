"""What a worker holds: the tables and their stores, the record codec, the aggregates (rollups),
the rep directory and its profile sync, and the table protocol the input path writes through.

May import ``streams.fold`` and ``streams.config``; never the input path, Kafka plumbing or the worker.
"""
