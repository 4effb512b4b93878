"""Training logs (issue 30): every run writes its logged metrics per step as a tidy CSV beside each record; a
resumed run's log equals an uninterrupted run's; TensorBoard / W&B only when asked and installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import interrupted_after_evaluation, run_options, tiny_overrides

from offbench.errors import OffbenchError
from offbench.records import trackers
from offbench.records.metrics_log import MetricsLog, metrics_path, read_rows
from offbench.training import run as run_module


def _opts(data, results, **kw):
    return run_options(data, results, **{"overrides": tiny_overrides(log_every=10), **kw})


def _quiet(_):
    pass


def _logs(run_dir: Path) -> dict:
    return {p.name: p.read_text() for p in sorted(Path(run_dir).glob("seed_*.metrics.csv"))}


def test_rows_windows_and_resume_truncation(tmp_path):
    log = MetricsLog(tmp_path, [3, 4], log_every=10)
    m = lambda a, b: {"loss": np.array([a, b], np.float32), "q": np.array([1.0, 2.0])}  # noqa: E731
    log.note(10, m(1.0, 2.0), 10)
    log.note(15, m(3.0, 4.0), 5)  # a short chunk before an evaluation: pending until the checkpoint
    assert [int(r[0]) for r in read_rows(metrics_path(tmp_path, 3))[1]] == [10]
    log.flush()
    log.note(16, m(1.0, 1.0), 1)  # online: one update per environment step, a row per 10 updates
    for s in range(17, 26):
        log.note(s, m(3.0, 3.0), 1)
    header, rows = read_rows(metrics_path(tmp_path, 3))
    assert header == ["step", "seed", "loss", "q"]
    assert [(r[0], r[1]) for r in rows] == [("10", "3"), ("15", "3"), ("25", "3")]
    assert float(rows[2][2]) == pytest.approx((1.0 + 9 * 3.0) / 10)
    frame = pd.read_csv(metrics_path(tmp_path, 4))
    assert frame["seed"].tolist() == [4, 4, 4] and frame["loss"].tolist()[:2] == [2.0, 4.0]
    # a torn last line (a kill mid-write) is not read; a resumed run drops the rows after its checkpoint
    with open(metrics_path(tmp_path, 3), "a") as f:
        f.write("30,3,0.5")
    assert len(read_rows(metrics_path(tmp_path, 3))[1]) == 3
    again = MetricsLog(tmp_path, [3, 4], log_every=10)
    again.resume(15)
    again.note(25, m(7.0, 7.0), 10)
    assert [int(r[0]) for r in read_rows(metrics_path(tmp_path, 3))[1]] == [10, 15, 25]
    assert float(read_rows(metrics_path(tmp_path, 3))[1][2][2]) == 7.0
    fresh = MetricsLog(tmp_path, [3], log_every=10)  # a fresh run (or --overwrite) starts an empty log
    fresh.note(10, {"loss": np.array([9.0])}, 10)
    assert [r[:3] for r in read_rows(metrics_path(tmp_path, 3))[1]] == [["10", "3", "9.0"]]


def test_every_run_logs_metrics_and_resume_does_not_duplicate(hopper_file, tmp_path, monkeypatch):
    whole = run_module.run(_opts(hopper_file, tmp_path / "a"), say=_quiet)
    d = Path(whole[0]["run_dir"])
    logs = _logs(d)
    assert sorted(logs) == ["seed_0.metrics.csv", "seed_1.metrics.csv"]
    frame = pd.read_csv(d / "seed_1.metrics.csv")
    assert frame["step"].tolist() == [10, 20, 30, 40] and set(frame["seed"]) == {1}
    assert {"critic_loss", "value_loss", "actor_loss"} <= set(frame.columns)
    assert np.isfinite(frame.drop(columns=["step", "seed"]).to_numpy()).all()
    # the last row holds the metrics the record keeps as its last ones
    assert frame.iloc[-1]["critic_loss"] == pytest.approx(whole[1]["metrics"]["critic_loss"], rel=1e-6)
    # interrupted after the evaluation at step 40, before its checkpoint: rows 30 and 40 are on disk already
    with interrupted_after_evaluation(monkeypatch, lambda run, n: n == 2):
        run_module.run(_opts(hopper_file, tmp_path / "b"), say=_quiet)
    d2 = Path(whole[0]["run_dir"].replace(str(tmp_path / "a"), str(tmp_path / "b")))
    assert pd.read_csv(d2 / "seed_0.metrics.csv")["step"].tolist() == [10, 20, 30, 40]
    said = []
    run_module.run(_opts(hopper_file, tmp_path / "b", resume=True), say=said.append)
    assert "resumed from step 20" in said
    assert _logs(d2) == logs  # byte for byte: no duplicated or missing step


def test_trackers_are_checked_before_training(monkeypatch):
    with pytest.raises(OffbenchError, match="unknown tracker"):
        trackers.check(["mlflow"])
    monkeypatch.setitem(trackers.KINDS, "tensorboard", "offbench_no_such_module")
    with pytest.raises(OffbenchError, match=r'pip install "offbench\[tensorboard\]"'):
        trackers.check(["tensorboard"])


@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None, reason="the tensorboard extra is not installed")
def test_tensorboard_gets_the_rows_and_scores(tmp_path):
    import struct

    from tensorboardX.proto.event_pb2 import Event

    tb = trackers.make(["tensorboard"], tmp_path, [0], {"algo": "iql", "dataset": "d", "variant": "v"})
    log = MetricsLog(tmp_path, [0], log_every=10, trackers=tb)
    log.note(10, {"loss": np.array([0.5])}, 10)
    log.flush([[{"step": 10, "score": 42.0, "return_mean": 1.0, "success_rate": 0.0}]])
    log.close()
    (path,) = (tmp_path / "tensorboard" / "seed_0").glob("events.out.tfevents.*")
    raw, scalars = path.read_bytes(), []
    while raw:  # TFRecord framing: length (u64), its crc (u32), the event, its crc (u32)
        (n,) = struct.unpack("<Q", raw[:8])
        event = Event.FromString(raw[12 : 12 + n])
        scalars += [(v.tag, event.step, v.simple_value) for v in event.summary.value if v.tag.startswith(("tr", "ev"))]
        raw = raw[16 + n :]
    assert ("train/loss", 10, 0.5) in scalars and ("eval/score", 10, 42.0) in scalars


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="the wandb extra is not installed")
def test_wandb_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    wb = trackers.make(["wandb"], tmp_path, [0], {"algo": "iql", "dataset": "d", "variant": "v", "config": {"a": 1}})
    log = MetricsLog(tmp_path, [0], log_every=10, trackers=wb)
    log.note(10, {"loss": np.array([0.5])}, 10)
    log.flush([[{"step": 10, "score": 42.0}]])
    run = wb.open_[0].runs[0]
    assert run.config["a"] == 1 and run.group == "None/d/iql/v"
    log.close()
    assert list((tmp_path / "wandb").glob("offline-run-*"))
