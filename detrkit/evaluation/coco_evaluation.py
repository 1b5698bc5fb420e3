"""COCO box detection metrics (AP, AP50, AP75, APs/m/l, AR, per-class AP) with pycocotools, with
detectron2's ``COCOEvaluator`` interface and result format (metrics in percent, NaN where undefined)."""

import contextlib
import io
import itertools
import json
import logging
import os

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tabulate import tabulate

from detrkit.data import DatasetCatalog, MetadataCatalog
from detrkit.evaluation.evaluator import DatasetEvaluator
from detrkit.structures import BoxMode
from detrkit.utils import comm

__all__ = ["COCOEvaluator", "instances_to_coco_json"]

logger = logging.getLogger(__name__)

_SUPPORTED_TASKS = ("bbox",)


class COCOEvaluator(DatasetEvaluator):
    """Evaluates detections (``outputs[i]["instances"]``: ``pred_boxes`` XYXY in original image
    coordinates, ``scores``, ``pred_classes`` contiguous ids) against a dataset's COCO json.

    Args:
        dataset_name: a dataset whose ``MetadataCatalog`` entry has ``json_file`` (COCO ground truth) and,
            for contiguous class ids, ``thing_dataset_id_to_contiguous_id``; ``thing_classes`` (in
            contiguous order) adds per-class ``AP-<name>`` metrics. Both are read at ``evaluate`` time, so
            the evaluator may be built before the dataset is loaded (which is when a COCO dataset sets them).
        tasks: the tasks to evaluate; only ``("bbox",)`` (the default) is supported.
        distributed: gather the predictions of all processes and evaluate on the main process; the others
            return ``{}``. Otherwise each process evaluates what it processed.
        output_dir: where to write ``coco_instances_results.json`` (COCO result format) and
            ``instances_predictions.pth`` (the per-image predictions as processed).
        max_dets_per_image: detections per image used for AP (COCO's limit, 100, by default).
        use_fast_impl: detectron2's option for its C++ COCOeval; detrkit always uses the official
            pycocotools implementation (logged when this is True).
        kpt_oks_sigmas: detectron2's keypoint option; unused (box detection only).
        allow_cached_coco: detectron2's option for converting non-COCO datasets; unused (detrkit evaluates
            datasets that have a ``json_file``).
    """

    def __init__(
        self,
        dataset_name: str,
        tasks: tuple[str, ...] | None = None,
        distributed: bool = True,
        output_dir: str | None = None,
        *,
        max_dets_per_image: int | None = None,
        use_fast_impl: bool = False,
        kpt_oks_sigmas: tuple[float, ...] = (),
        allow_cached_coco: bool = True,
    ):
        self._tasks = ("bbox",) if tasks is None else tuple(tasks)
        unsupported = [task for task in self._tasks if task not in _SUPPORTED_TASKS]
        if unsupported:
            raise ValueError(
                f"COCOEvaluator: unsupported task(s) {unsupported}; detrkit evaluates only {_SUPPORTED_TASKS}"
            )
        if max_dets_per_image is not None and max_dets_per_image < 1:
            raise ValueError(f"COCOEvaluator: max_dets_per_image must be >= 1, got {max_dets_per_image}")
        # AP and the per-size AR use `limit` detections per image (and category, as COCOeval counts them);
        # AR is also reported at 1 and 10. COCOeval wants its maxDets sorted.
        self._limit = 100 if max_dets_per_image is None else max_dets_per_image
        self._max_dets = sorted({1, 10, self._limit})
        if use_fast_impl:
            logger.info(
                "Fast COCO eval is not available in detrkit; using the official pycocotools COCOeval."
            )
        self._distributed = distributed
        self._output_dir = output_dir
        self._dataset_name = dataset_name

        self._metadata = MetadataCatalog.get(dataset_name)
        json_file = self._metadata.get("json_file")
        if json_file is None:
            raise ValueError(
                f"COCOEvaluator: dataset '{dataset_name}' has no 'json_file' in its metadata; register it "
                "with a COCO json (e.g. detrkit.data.register_coco_instances)"
            )
        if not os.path.exists(json_file) and dataset_name in DatasetCatalog.list():
            # Generated datasets (the synthetic shapes) write their json when first loaded.
            DatasetCatalog.get(dataset_name)
        if not os.path.exists(json_file):
            raise FileNotFoundError(
                f"COCOEvaluator: the json_file of dataset '{dataset_name}' does not exist: {json_file}"
            )
        self._json_file = json_file
        with contextlib.redirect_stdout(io.StringIO()):
            self._coco_api = COCO(json_file)
        # Test-set json files have no annotations: then predictions are only written, not evaluated.
        self._do_evaluation = "annotations" in self._coco_api.dataset
        self.reset()

    def reset(self) -> None:
        self._predictions: list[dict] = []

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """Converts each output's ``instances`` to COCO results for the ``image_id`` of its input dict."""
        for input_dict, output in zip(inputs, outputs, strict=True):
            if "instances" not in output:
                continue
            if "image_id" not in input_dict:
                raise ValueError(
                    f"COCOEvaluator.process: an input dict has no 'image_id' (keys: {sorted(input_dict)})"
                )
            image_id = input_dict["image_id"]
            instances = output["instances"].to(torch.device("cpu"))
            self._predictions.append(
                {"image_id": image_id, "instances": instances_to_coco_json(instances, image_id)}
            )

    def evaluate(self, img_ids: list[int] | None = None) -> dict:
        """Evaluates everything processed (on all processes when distributed).

        Args:
            img_ids: evaluate only these image ids (default: all images of the json).

        Returns:
            ``{"bbox": {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR@1", "AR@10", "AR@100", "ARs@100",
            "ARm@100", "ARl@100", "AP-<class>"...}}`` in percent (NaN where undefined; only the summary
            metrics, all NaN, when there is no detection at all); ``{}`` on non-main processes, when no
            image was processed, or when the json has no annotations.
        """
        predictions = self._predictions
        if self._distributed:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(predictions, dst=0)))
            if not comm.is_main_process():
                return {}
        if not predictions:
            logger.warning("[COCOEvaluator] Did not receive valid predictions.")
            return {}

        if self._output_dir:
            os.makedirs(self._output_dir, exist_ok=True)
            torch.save(predictions, os.path.join(self._output_dir, "instances_predictions.pth"))
        coco_results = self._to_dataset_ids(list(itertools.chain(*[p["instances"] for p in predictions])))
        if self._output_dir:
            file_path = os.path.join(self._output_dir, "coco_instances_results.json")
            logger.info(f"Saving results to {file_path}")
            with open(file_path, "w") as f:
                json.dump(coco_results, f)

        if not self._do_evaluation:
            logger.info(f"{self._json_file} has no annotations: predictions are not evaluated.")
            return {}
        logger.info("Evaluating predictions with the official COCO API ...")
        if not coco_results:
            logger.warning("No predictions from the model! All metrics are NaN.")
            return {"bbox": dict.fromkeys(self._summary_names(), float("nan"))}
        coco_eval = self._run_cocoeval(coco_results, img_ids)
        return {"bbox": self._derive_coco_results(coco_eval)}

    def _contiguous_to_dataset_id(self) -> dict[int, int] | None:
        """Contiguous class id -> dataset category id, from the metadata as it is now: loading a COCO
        dataset sets ``thing_dataset_id_to_contiguous_id``, and the evaluator may have been built before
        (detectron2 also reads it at evaluation time)."""
        mapping = self._metadata.get("thing_dataset_id_to_contiguous_id")
        return None if mapping is None else {c: d for d, c in mapping.items()}

    def _to_dataset_ids(self, coco_results: list[dict]) -> list[dict]:
        """The results with contiguous class ids replaced by the dataset's category ids."""
        to_dataset_id = self._contiguous_to_dataset_id()
        if to_dataset_id is None:
            return coco_results
        converted = []
        for result in coco_results:
            category_id = result["category_id"]
            if category_id not in to_dataset_id:
                raise ValueError(
                    f"COCOEvaluator: a prediction for image {result['image_id']} has class {category_id}, "
                    f"but dataset '{self._dataset_name}' has {len(to_dataset_id)} classes "
                    f"(ids 0..{len(to_dataset_id) - 1})"
                )
            converted.append({**result, "category_id": to_dataset_id[category_id]})
        return converted

    def _run_cocoeval(self, coco_results: list[dict], img_ids: list[int] | None) -> COCOeval:
        """pycocotools' evaluate + accumulate of the results (its console output goes to the debug log)."""
        with contextlib.redirect_stdout(io.StringIO()) as console:
            coco_dt = self._coco_api.loadRes(coco_results)
            coco_eval = COCOeval(self._coco_api, coco_dt, "bbox")
            coco_eval.params.maxDets = self._max_dets
            if img_ids is not None:
                coco_eval.params.imgIds = img_ids
            coco_eval.evaluate()
            coco_eval.accumulate()
        logger.debug(console.getvalue())
        return coco_eval

    def _summary_names(self) -> list[str]:
        recall_names = [f"AR@{n}" for n in self._max_dets] + [f"AR{size}@{self._limit}" for size in "sml"]
        return ["AP", "AP50", "AP75", "APs", "APm", "APl", *recall_names]

    def _derive_coco_results(self, coco_eval: COCOeval) -> dict[str, float]:
        """The numbers of ``COCOeval.summarize`` (AP and per-size AR at ``max_dets_per_image``; AR at 1, 10
        and ``max_dets_per_image``) and per-class AP, in percent; NaN where COCOeval has nothing to
        average."""
        params = coco_eval.params
        # precision: (iou thresholds, recall thresholds, classes, areas, max dets); recall: the same without
        # the recall thresholds. COCOeval marks entries it cannot compute with -1.
        precision = coco_eval.eval["precision"]
        recall = coco_eval.eval["recall"]
        area = {label: index for index, label in enumerate(params.areaRngLbl)}
        at_limit = params.maxDets.index(self._limit)

        def iou(threshold: float) -> np.ndarray:
            return np.flatnonzero(np.isclose(params.iouThrs, threshold))

        summary = [
            precision[..., area["all"], at_limit],
            precision[iou(0.5)][..., area["all"], at_limit],
            precision[iou(0.75)][..., area["all"], at_limit],
            precision[..., area["small"], at_limit],
            precision[..., area["medium"], at_limit],
            precision[..., area["large"], at_limit],
            *[recall[..., area["all"], m] for m in range(len(params.maxDets))],
            recall[..., area["small"], at_limit],
            recall[..., area["medium"], at_limit],
            recall[..., area["large"], at_limit],
        ]
        results = {
            name: _mean_percent(values) for name, values in zip(self._summary_names(), summary, strict=True)
        }
        logger.info("Evaluation results for bbox: \n" + _table(results))
        if not np.isfinite(sum(results.values())):
            logger.info("Some metrics cannot be computed and are shown as NaN.")

        class_names = self._metadata.get("thing_classes")
        if class_names is None or len(class_names) <= 1:
            return results
        if len(class_names) != len(params.catIds):
            raise ValueError(
                f"COCOEvaluator: dataset '{self._dataset_name}' has {len(class_names)} thing_classes but "
                f"{self._json_file} has {len(params.catIds)} categories"
            )
        dataset_ids = self._contiguous_to_dataset_id() or params.catIds  # class k -> its category id
        per_class = {
            f"AP-{name}": _mean_percent(
                precision[:, :, params.catIds.index(dataset_ids[k]), area["all"], at_limit]
            )
            for k, name in enumerate(class_names)
        }
        logger.info("Per-category bbox AP: \n" + _table(per_class))
        return {**results, **per_class}


def instances_to_coco_json(instances, img_id: int) -> list[dict]:
    """COCO result dicts ``{"image_id", "category_id", "bbox" (XYWH), "score"}`` of one image's predictions.

    Args:
        instances: ``Instances`` with ``pred_boxes`` (``(N, 4)`` XYXY boxes), ``scores`` ``(N,)`` and
            ``pred_classes`` ``(N,)`` (the class ids are kept as they are).
        img_id: the image id written in every result.
    """
    if len(instances) == 0:
        return []
    boxes = BoxMode.convert(instances.pred_boxes.tensor, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS).tolist()
    scores = instances.scores.tolist()
    classes = instances.pred_classes.tolist()
    return [
        {"image_id": img_id, "category_id": int(c), "bbox": box, "score": float(s)}
        for box, s, c in zip(boxes, scores, classes, strict=True)
    ]


def _mean_percent(values: np.ndarray) -> float:
    """Mean of the defined entries (COCOeval marks undefined ones -1) in percent, NaN if none is defined."""
    defined = values[values > -1]
    return float(defined.mean() * 100) if defined.size else float("nan")


def _table(metrics: dict[str, float]) -> str:
    return tabulate([list(metrics.values())], headers=list(metrics), tablefmt="pipe", floatfmt=".3f")
