"""``leadpulse import FILE.jsonl``: backfill an export into the input topics (SPEC §5)."""
