"""The Kafka plumbing: the embedded broker, Faust's transport with Tansu-safe end offsets, topic
administration, the batch intake below Faust's Stream, and the check that the broker still holds
what the tables hold (starting over when it does not).

May import ``streams.ingest``, ``streams.state``, ``streams.fold`` and ``streams.config``.
"""
