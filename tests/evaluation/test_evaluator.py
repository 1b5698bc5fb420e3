"""DatasetEvaluators and inference_on_dataset with a fake model and recording evaluators."""

import logging

import pytest
import torch

from detrkit.evaluation import DatasetEvaluator, DatasetEvaluators, inference_context, inference_on_dataset


class RecordingEvaluator(DatasetEvaluator):
    """Counts calls and returns ``{key: {"batches": n, "images": m}}``."""

    def __init__(self, key: str = "recorded"):
        self.key = key
        self.resets = 0
        self.batches: list[tuple[list, list]] = []

    def reset(self):
        self.resets += 1
        self.batches = []

    def process(self, inputs, outputs):
        self.batches.append((inputs, outputs))

    def evaluate(self):
        return {self.key: {"batches": len(self.batches), "images": sum(len(i) for i, _ in self.batches)}}


class DoublingModel(torch.nn.Module):
    """Returns ``2 * x`` for every input dict and records its mode and grad state at each call."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(2.0))
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, batch):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return [{"y": self.scale * d["x"]} for d in batch]


BATCHES = [[{"x": torch.tensor(1.0)}, {"x": torch.tensor(2.0)}], [{"x": torch.tensor(3.0)}]]


def test_inference_on_dataset_runs_every_batch_in_eval_mode_without_grad(capsys, caplog):
    model = DoublingModel().train()
    evaluator = RecordingEvaluator()
    with caplog.at_level(logging.INFO, logger="detrkit.evaluation.evaluator"):
        results = inference_on_dataset(model, BATCHES, evaluator)

    assert results == {"recorded": {"batches": 2, "images": 3}}
    assert evaluator.resets == 1
    assert model.calls == [(False, False), (False, False)]
    assert model.training  # mode restored
    assert [out["y"].item() for _, outputs in evaluator.batches for out in outputs] == [2.0, 4.0, 6.0]
    assert "2/2" in capsys.readouterr().err  # tqdm progress bar with the loader's length
    assert "Total inference time" in caplog.text and "3 images" in caplog.text


def test_inference_on_dataset_restores_eval_mode_and_accepts_iterables():
    model = DoublingModel().eval()
    results = inference_on_dataset(model, (batch for batch in BATCHES), [RecordingEvaluator("a")])
    assert results == {"a": {"batches": 2, "images": 3}}
    assert not model.training


def test_inference_on_dataset_without_evaluator_returns_empty_dict():
    model = DoublingModel()
    assert inference_on_dataset(model, BATCHES, None) == {}
    assert len(model.calls) == 2


def test_inference_context_restores_mode_on_error():
    model = DoublingModel().train()
    with pytest.raises(RuntimeError, match="boom"), inference_context(model):
        assert not model.training
        raise RuntimeError("boom")
    assert model.training


def test_dataset_evaluators_merge_results_and_reject_duplicate_keys():
    first, second = RecordingEvaluator("first"), RecordingEvaluator("second")
    combined = DatasetEvaluators([first, second])
    combined.reset()
    combined.process([1, 2], ["a", "b"])
    assert combined.evaluate() == {
        "first": {"batches": 1, "images": 2},
        "second": {"batches": 1, "images": 2},
    }
    assert first.resets == second.resets == 1

    with pytest.raises(ValueError, match="RecordingEvaluator returned the key 'same'"):
        DatasetEvaluators([RecordingEvaluator("same"), RecordingEvaluator("same")]).evaluate()


def test_base_evaluator_is_a_no_op():
    evaluator = DatasetEvaluator()
    evaluator.reset()
    evaluator.process([{}], [{}])
    assert evaluator.evaluate() == {}
