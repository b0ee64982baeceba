"""The benchmark's profile section reads py-spy's raw samples (bench/profile.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.profile import readable, summarize
from bench.restart import Restart, per_open_deal, rebuild_seconds

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


def test_within_keeps_the_samples_inside_one_function_as_shares_of_those() -> None:
    raw = "\n".join(
        [
            f"{MAIN};Engine._rebuild (engine.py:1);CPyDef_rollups___Rollups___add_deal (x.so) 3",
            f"{MAIN};Engine._rebuild (engine.py:1);Outputs.reschedule (emitter.py:5) 1",
            f"{MAIN};Recovery._restart_recovery (recovery.py:7) 6",  # outside the rebuild
        ]
    )
    profile = summarize(raw, within="Engine._rebuild")
    assert profile.samples == 4
    assert dict(profile.inclusive) == {
        "Engine._rebuild": 1.0,
        "rollups.Rollups.add_deal": 0.75,
        "Outputs.reschedule": 0.25,
    }


def test_the_rebuild_seconds_are_read_from_the_last_rebuild_the_worker_logged(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text(
        "[2026-12-06 22:15:08,609] [1] [INFO] aggregates and alert schedule rebuilt for partitions [] "
        "from 0 deals in 0.00s \n"
        "[2026-12-06 22:15:13,609] [1] [INFO] aggregates and alert schedule rebuilt for partitions [0, 1, 2, 3] "
        "from 100000 deals in 4.83s \n"
    )
    assert rebuild_seconds(log) == 4.83
    log.write_text("[INFO] Recovery complete\n")
    with pytest.raises(SystemExit, match="no rebuild"):
        rebuild_seconds(log)


def test_memory_per_open_deal_is_read_between_the_two_sizes_of_the_store() -> None:
    mib = 2**20
    results = [
        Restart("rocksdb", 10_000, 5.0, 110 * mib, 335, 0.4),
        Restart("memory", 100_000, 25.0, 200 * mib, 337, 3.0),
        Restart("rocksdb", 100_000, 8.0, 164 * mib, 337, 3.5),
        Restart("rocksdb", 1_000_000, 45.0, 700 * mib, 337, 35.0),  # the RocksDB-only line: not a pair
    ]
    assert per_open_deal(results, "rocksdb") == 54 * mib / 90_000
    assert results[-1].rebuild_us_per_deal == 35.0
