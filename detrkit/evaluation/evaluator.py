"""The evaluator protocol (``DatasetEvaluator``), running several evaluators together
(``DatasetEvaluators``), and ``inference_on_dataset``: detectron2's names and semantics."""

import datetime
import logging
import time
from collections import abc
from contextlib import ExitStack, contextmanager

import torch
from torch import nn
from tqdm import tqdm

from detrkit.utils import comm

__all__ = ["DatasetEvaluator", "DatasetEvaluators", "inference_context", "inference_on_dataset"]

logger = logging.getLogger(__name__)


class DatasetEvaluator:
    """Accumulates a model's inputs/outputs over a dataset (``process``) and summarises them (``evaluate``).

    ``inference_on_dataset`` calls ``reset()`` once, ``process(inputs, outputs)`` for every batch, then
    ``evaluate()``. The base class does nothing and evaluates to ``{}``; subclasses override all three.
    """

    def reset(self) -> None:
        """Forgets what was processed: call before a new round of evaluation."""

    def process(self, inputs: list, outputs: list) -> None:
        """Takes one batch: ``inputs`` as given to the model, ``outputs`` what it returned (same order)."""

    def evaluate(self) -> dict:
        """The results of this round, e.g. ``{"bbox": {"AP": 40.1, ...}}`` (task -> metric -> value).

        In distributed evaluation only the main process is expected to return the results; the others may
        return ``{}`` or ``None``.
        """
        return {}


class DatasetEvaluators(DatasetEvaluator):
    """Several evaluators run on the same inputs/outputs; their results are merged into one dict.

    Args:
        evaluators: the evaluators to combine (may be empty: then it only runs the model).
    """

    def __init__(self, evaluators: list[DatasetEvaluator]):
        super().__init__()
        self._evaluators = list(evaluators)

    def reset(self) -> None:
        for evaluator in self._evaluators:
            evaluator.reset()

    def process(self, inputs: list, outputs: list) -> None:
        for evaluator in self._evaluators:
            evaluator.process(inputs, outputs)

    def evaluate(self) -> dict:
        """Every evaluator's results merged; two evaluators returning the same key is an error."""
        results = {}
        for evaluator in self._evaluators:
            result = evaluator.evaluate()
            if not comm.is_main_process() or result is None:
                continue
            for key, value in result.items():
                if key in results:
                    raise ValueError(
                        f"DatasetEvaluators: {type(evaluator).__name__} returned the key '{key}', "
                        "which an earlier evaluator already returned"
                    )
                results[key] = value
        return results


@contextmanager
def inference_context(model: nn.Module):
    """Puts ``model`` in eval mode inside the block and restores its previous mode afterwards (also when the
    block raises)."""
    training_mode = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training_mode)


def inference_on_dataset(
    model, data_loader, evaluator: DatasetEvaluator | list[DatasetEvaluator] | None
) -> dict:
    """Runs ``model`` on every batch of ``data_loader`` and evaluates the outputs with ``evaluator``.

    Args:
        model: a callable taking one batch of ``data_loader``; an ``nn.Module`` is put in eval mode for the
            run (``inference_context``) and gradients are off.
        data_loader: an iterable of batches (lists of dataset dicts); its ``len`` is used for the progress
            bar when it has one.
        evaluator: a ``DatasetEvaluator``, a list of them (run as ``DatasetEvaluators``), or ``None`` to only
            run the model.

    Returns:
        ``evaluator.evaluate()`` (``{}`` when it returns ``None``, e.g. on a non-main process).
    """
    total = len(data_loader) if isinstance(data_loader, abc.Sized) else None
    logger.info(f"Start inference on {total if total is not None else 'an unknown number of'} batches")
    if evaluator is None:
        evaluator = DatasetEvaluators([])
    elif isinstance(evaluator, abc.MutableSequence):
        evaluator = DatasetEvaluators(evaluator)
    evaluator.reset()

    num_images = 0
    start_time = time.perf_counter()
    with ExitStack() as stack:
        if isinstance(model, nn.Module):
            stack.enter_context(inference_context(model))
        stack.enter_context(torch.no_grad())
        progress = tqdm(data_loader, total=total, desc="Inference", disable=not comm.is_main_process())
        for inputs in progress:
            outputs = model(inputs)
            evaluator.process(inputs, outputs)
            num_images += len(inputs) if isinstance(inputs, list | tuple) else 1
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    total_time = time.perf_counter() - start_time
    logger.info(
        f"Total inference time: {datetime.timedelta(seconds=total_time)} "
        f"({total_time / max(num_images, 1):.6f} s / img per device, on {comm.get_world_size()} devices, "
        f"{num_images} images)"
    )

    results = evaluator.evaluate()
    return {} if results is None else results
