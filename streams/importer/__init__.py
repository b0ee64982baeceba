"""``leadpulse import FILE.jsonl``: backfill an export into the input topics (SPEC §5).

May import ``streams.kafka.topics`` and ``streams.config``.
"""
