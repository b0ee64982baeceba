"""The input path: decode and validate each message, dead-letter what is bad, fold batches into
the tables and aggregates (:mod:`streams.ingest.processor`).

May import ``streams.fold``, ``streams.state`` and ``streams.config``; knows no Faust or Kafka client.
"""
