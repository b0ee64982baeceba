"""Publishing to the output topics: lead responses and alerts (SPEC §4)."""
