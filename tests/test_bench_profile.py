"""The benchmark's profile section reads py-spy's raw samples (bench/profile.py)."""

from __future__ import annotations

from bench.profile import readable, summarize

MAIN = "<module> (streams/cli.py:1);main (streams/cli.py:9);cmd_worker (streams/cli.py:40)"


def test_compiled_and_python_frames_read_as_python_names() -> None:
    assert readable("CPyDef_rollups___Rollups___apply (streams/core__mypyc.so)") == "rollups.Rollups.apply"
    assert readable("CPyPy_outputs___plan (streams/core__mypyc.so)") == "outputs.plan"
    assert readable("BatchIntake.take (streams/kafka/intake.py:155)") == "BatchIntake.take"


def test_shares_count_the_main_thread_only_and_each_function_once_per_sample() -> None:
    raw = "\n".join(
        [
            f"{MAIN};BatchIntake.take (intake.py:1);CPyDef_rollups___Rollups___apply (x.so) 6",
            f"{MAIN};BatchIntake.take (intake.py:1);f (a.py:1);f (a.py:2) 2",  # recursion: counted once
            f"{MAIN};_PartitionedWrites.durable (tables.py:9) 2",
            "Thread._bootstrap (threading.py:1);Fetcher.fetched_records (fetcher.py:3) 50",  # another thread
        ]
    )
    profile = summarize(raw)
    assert profile.samples == 10
    assert dict(profile.inclusive) == {
        "BatchIntake.take": 0.8,
        "rollups.Rollups.apply": 0.6,
        "f": 0.2,
        "_PartitionedWrites.durable": 0.2,
    }
    assert dict(profile.self_time) == {"rollups.Rollups.apply": 0.6, "f": 0.2, "_PartitionedWrites.durable": 0.2}
