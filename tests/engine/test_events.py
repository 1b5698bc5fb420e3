"""EventStorage and the writers: stored values, metrics.json lines, the console line, TensorBoard events."""

import json
import logging
import statistics

import pytest

from detrkit.utils.events import (
    CommonMetricPrinter,
    EventStorage,
    JSONWriter,
    TensorboardXWriter,
    get_event_storage,
)


def test_storage_history_latest_and_smoothing():
    with EventStorage(start_iter=3) as storage:
        assert get_event_storage() is storage
        for value in [4.0, 1.0, 9.0]:
            storage.put_scalar("loss", value)
            storage.put_scalar("lr", value / 10, smoothing_hint=False)
            storage.step()
        assert storage.iter == 6
        assert [v for v, _ in storage.history("loss").values()] == [4.0, 1.0, 9.0]
        assert storage.latest() == {"loss": (9.0, 5), "lr": (0.9, 5)}
        # smoothed: median of the last window values; not smoothed: the latest value
        assert storage.latest_with_smoothing_hint(window_size=2) == {"loss": (5.0, 5), "lr": (0.9, 5)}
        assert storage.latest_with_smoothing_hint(window_size=3)["loss"] == (4.0, 5)
        storage.iter = 10
        storage.put_scalars(a=1, b=2.5)
        assert storage.latest()["b"] == (2.5, 10)
        with storage.name_scope("val"):
            storage.put_scalar("AP", 0.5)
        assert "val/AP" in storage.histories()
        with pytest.raises(ValueError, match="smoothing_hint"):
            storage.put_scalar("lr", 1.0, smoothing_hint=True)
        with pytest.raises(KeyError, match="nothing"):
            storage.history("nothing")
    with pytest.raises(AssertionError, match="EventStorage"):
        get_event_storage()


def test_json_writer_writes_each_iteration_once(tmp_path):
    path = tmp_path / "metrics.json"
    writer = JSONWriter(str(path), window_size=2)
    with EventStorage() as storage:
        for value in [1.0, 3.0, 8.0]:
            storage.put_scalars(total_loss=value)
            storage.put_scalar("lr", value, smoothing_hint=False)
            storage.step()
        writer.write()  # only the latest iteration (2) has not been written yet
        storage.put_scalar("total_loss", 10.0)
        writer.write()
        writer.write()  # nothing new: no line
    writer.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"iteration": 2, "lr": 8.0, "total_loss": statistics.median([3.0, 8.0])},
        {"iteration": 3, "total_loss": statistics.median([8.0, 10.0])},
    ]


def test_common_metric_printer_line():
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("detrkit.utils.events")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with EventStorage(start_iter=9) as storage:
            storage.put_scalars(time=1.0, data_time=0.25, total_loss=1.5, loss_bbox=0.5)
            storage.put_scalar("lr", 2e-4, smoothing_hint=False)
            CommonMetricPrinter(max_iter=100).write()
            eta = storage.latest()["eta_seconds"][0]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    line = records[-1].getMessage()
    assert eta == 90.0  # median step time 1 s x (100 - 9 - 1) remaining iterations
    for part in ["eta: 0:01:30", "iter: 9/100 (10.0%)", "total_loss: 1.5", "loss_bbox: 0.5"]:
        assert part in line
    for part in ["time: 1.0000", "data_time: 0.2500", "lr: 0.0002"]:
        assert part in line


def test_tensorboard_writer_writes_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    writer = TensorboardXWriter(str(tmp_path))
    with EventStorage() as storage:
        for value in [2.0, 1.0]:
            storage.put_scalar("lr", value, smoothing_hint=False)
            writer.write()
            storage.step()
    writer.close()
    assert list(tmp_path.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("lr")] == [(0, 2.0), (1, 1.0)]
