"""What DINO and H-Deformable-DETR share as detectors: detectron2 model I/O (image normalisation, padding
masks, GT conversion, eval results in original-image pixels), the per-layer prediction heads with box
refinement, and loss weighting."""

import copy
import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from detrkit.layers.logits import inverse_sigmoid
from detrkit.layers.mlp import MLP
from detrkit.modeling.criterion.weight_dict import weight_losses
from detrkit.modeling.postprocessing import detector_postprocess, topk_detections
from detrkit.modeling.transformer.outputs import compose_query_orders
from detrkit.structures.box_ops import box_xyxy_to_cxcywh
from detrkit.structures.image_list import ImageList
from detrkit.structures.instances import Instances

__all__ = ["TwoStageDETR", "in_initial_query_order"]


def in_initial_query_order(per_layer: torch.Tensor, query_ids: torch.Tensor | None) -> torch.Tensor:
    """``per_layer`` ``(num_layers, bs, nq, D)``, each layer in the order its decoder layer output its
    queries, moved to the decoder's initial query order by ``query_ids`` ``(num_layers, bs, nq)`` (see
    :class:`~detrkit.modeling.transformer.DecoderOutput`); unchanged when None. Index ``q`` is then the same
    query in every layer, as cross-layer criteria (StageInteractor's cross-stage label assignment) need."""
    if query_ids is None:
        return per_layer
    positions = query_ids.argsort(-1)
    return per_layer.gather(2, positions[..., None].expand_as(per_layer))


class TwoStageDETR(nn.Module):
    """Base of the two-stage deformable DETRs; subclasses write ``forward``.

    It owns ``class_embed`` and ``bbox_embed``: ``num_layers + 1`` independent copies (one per decoder layer,
    the last for the encoder proposals) of ``Linear(C, num_classes)`` (bias ``-log((1 - 0.01) / 0.01)``, focal
    prior 0.01) and ``MLP(C, C, 4, 3)`` (last layer zero), also assigned to ``transformer.decoder`` as in
    detrex. The neck's convolutions get Xavier-uniform weights and zero biases. The padded batch's sides are
    multiples of the attribute ``size_divisibility`` (0 here: no rounding, as detrex's DETRs). Before every
    criterion call the predictions (its first argument) are checked: a NaN/inf one raises
    ``FloatingPointError`` naming it (e.g. ``outputs["aux_outputs"][0]["pred_boxes"]``) instead of reaching
    the matcher, whose box costs cannot handle it.

    Args:
        backbone: image ``(bs, 3, H, W)`` -> dict of feature maps.
        position_embedding: padding mask ``(bs, h, w)`` -> ``(bs, C, h, w)``.
        neck: backbone features -> list of ``L`` maps ``(bs, C, h_l, w_l)``.
        transformer: a two-stage deformable transformer whose ``decoder`` has ``num_layers``.
        embed_dim: ``C``.
        num_classes: object classes (no background class: sigmoid scores).
        criterion: ``criterion(outputs, targets, ...)`` -> dict of unweighted losses, with ``weight_dict``.
        pixel_mean, pixel_std: per-channel normalisation of the input images (in the input's channel order).
        aux_loss: add every decoder layer's predictions to the outputs (``aux_outputs``).
        select_box_nums_for_evaluation: detections kept per image at inference.
        device: where to put the model; None leaves it on the CPU for the caller to move (the model follows
            its parameters' device).
        class_bias: a per-layer adjustment of the decoder layers' class logits, ``(num_layers, bs, nq,
            num_classes)`` in and out, applied in each layer's query order (e.g. Rank-DETR's
            ``RankAdaptiveClassHead``: biases by rank position); the decoder's ``between_layers`` hook must
            order the queries (have ``query_order``, e.g. Rank-DETR's ``QueryRanking``). None: no adjustment.

    Raises:
        ValueError: ``class_bias`` given and the decoder's ``between_layers`` hook has no ``query_order``.
    """

    size_divisibility: int = 0

    def __init__(
        self,
        backbone: nn.Module,
        position_embedding: nn.Module,
        neck: nn.Module,
        transformer: nn.Module,
        embed_dim: int,
        num_classes: int,
        criterion: nn.Module,
        pixel_mean: list[float],
        pixel_std: list[float],
        aux_loss: bool,
        select_box_nums_for_evaluation: int,
        device: str | torch.device | None,
        class_bias: nn.Module | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.position_embedding = position_embedding
        self.neck = neck
        self.transformer = transformer
        self.embed_dim = embed_dim
        self.num_classes = num_classes
        self.criterion = criterion
        criterion.register_forward_pre_hook(_check_finite_predictions)
        if class_bias is not None and _query_order(transformer.decoder) is None:
            raise ValueError(
                f"{type(self).__name__}: class_bias {type(class_bias).__name__} adjusts the logits of "
                f"ordered queries; the decoder {type(transformer.decoder).__name__} needs a between_layers "
                "hook that orders them (with a query_order method, e.g. Rank-DETR's QueryRanking)"
            )
        self.class_bias = class_bias
        self.aux_loss = aux_loss
        self.select_box_nums_for_evaluation = select_box_nums_for_evaluation
        if len(pixel_mean) != len(pixel_std):
            raise ValueError(f"pixel_mean {pixel_mean} and pixel_std {pixel_std} differ in length")
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        self._build_heads(embed_dim, num_classes)
        for module in self.neck.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight, gain=1)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)
        if device is not None:
            self.to(device)

    def _build_heads(self, embed_dim: int, num_classes: int) -> None:
        class_head = nn.Linear(embed_dim, num_classes)
        nn.init.constant_(class_head.bias, -math.log((1 - 0.01) / 0.01))
        box_head = MLP(embed_dim, embed_dim, 4, 3)
        nn.init.constant_(box_head.layers[-1].weight, 0)
        nn.init.constant_(box_head.layers[-1].bias, 0)
        num_pred = self.transformer.decoder.num_layers + 1
        self.class_embed = nn.ModuleList(copy.deepcopy(class_head) for _ in range(num_pred))
        self.bbox_embed = nn.ModuleList(copy.deepcopy(box_head) for _ in range(num_pred))
        self.transformer.decoder.class_embed = self.class_embed
        self.transformer.decoder.bbox_embed = self.bbox_embed

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        """Normalised images ``(image - pixel_mean) / pixel_std`` padded into one ``ImageList`` (sides
        multiples of ``size_divisibility``)."""
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        return ImageList.from_tensors(images, size_divisibility=self.size_divisibility)

    def multi_level_inputs(
        self, images: ImageList
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Backbone + neck features ``(bs, C, h_l, w_l)``, their padding masks ``(bs, h_l, w_l)`` (True at
        padding, the image mask resized by nearest neighbour) and position embeddings."""
        batch, _, height, width = images.tensor.shape
        img_masks = images.tensor.new_ones(batch, height, width)
        for i, (h, w) in enumerate(images.image_sizes):
            img_masks[i, :h, :w] = 0
        feats = self.neck(self.backbone(images.tensor))
        masks = [F.interpolate(img_masks[None], size=f.shape[-2:]).to(torch.bool)[0] for f in feats]
        return feats, masks, [self.position_embedding(m) for m in masks]

    def prepare_targets(
        self, batched_inputs: list[dict], input_size: tuple[int, int]
    ) -> list[dict[str, torch.Tensor]]:
        """Per image ``{"labels": (n,) int64, "boxes": (n, 4) (cx, cy, w, h) normalised by the image size}``
        from ``batched_inputs[i]["instances"]`` (``gt_classes``, ``gt_boxes`` in xyxy pixels). A class id
        outside ``0 .. num_classes - 1`` raises ValueError naming it and the image. ``input_size`` is the
        padded batch's ``(H, W)``, for subclasses whose targets refer to it (Salience DETR); unused here."""
        targets = []
        for index, x in enumerate(batched_inputs):
            if "instances" not in x:
                raise ValueError(f"training needs batched_inputs[{index}]['instances'] (the ground truth)")
            classes = x["instances"].gt_classes
            if len(classes) and not (0 <= int(classes.min()) and int(classes.max()) < self.num_classes):
                image = x.get("file_name", f"batched_inputs[{index}]")
                raise ValueError(
                    f"{image} has ground-truth class ids {sorted(set(classes.tolist()))}, but the model has "
                    f"num_classes={self.num_classes} (ids 0..{self.num_classes - 1}): set model.num_classes "
                    "to the dataset's number of classes (len(thing_classes))"
                )
            instances = x["instances"].to(self.device)
            height, width = instances.image_size
            scale = torch.as_tensor([width, height, width, height], dtype=torch.float, device=self.device)
            boxes = box_xyxy_to_cxcywh(instances.gt_boxes.tensor / scale)
            targets.append({"labels": instances.gt_classes, "boxes": boxes})
        return targets

    def predict_layers(
        self,
        inter_states: torch.Tensor,
        init_reference: torch.Tensor,
        inter_references: torch.Tensor,
        query_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits ``(num_layers, bs, nq, num_classes)`` and boxes ``(num_layers, bs, nq, 4)`` of
        every decoder layer: ``b_l = sigmoid(bbox_embed_l(h_l) + sigmoid^-1(r_{l-1}))`` with ``r_{-1}`` the
        initial reference ``(bs, nq, 4)`` and ``r_l`` the ``(num_layers, bs, nq, 4)`` refined ones; the
        logits through ``class_bias`` (in each layer's order); with the decoder's ``query_ids``
        ``(num_layers, bs, nq)``, in its initial query order (:func:`in_initial_query_order`; per-layer
        matching, losses and the top-k postprocess do not depend on the order). detrex's transformers do not
        pass the order on (``query_ids`` None): a decoder hook's ``query_order`` gives it again from the
        layers' outputs."""
        query_order = _query_order(self.transformer.decoder)
        if query_ids is None and query_order is not None:
            orders = [query_order(i, h, self.class_embed) for i, h in enumerate(inter_states[:-1])]
            query_ids = compose_query_orders(orders)
        references = torch.cat([init_reference[None], inter_references[:-1]])
        outputs_class = torch.stack([self.class_embed[i](h) for i, h in enumerate(inter_states)])
        if self.class_bias is not None:
            outputs_class = self.class_bias(outputs_class)
        outputs_coord = torch.stack(
            [
                (self.bbox_embed[i](h) + inverse_sigmoid(references[i])).sigmoid()
                for i, h in enumerate(inter_states)
            ]
        )
        return tuple(in_initial_query_order(x, query_ids) for x in (outputs_class, outputs_coord))

    @staticmethod
    def _set_aux_loss(
        outputs_class: torch.Tensor, outputs_coord: torch.Tensor
    ) -> list[dict[str, torch.Tensor]]:
        """``[{"pred_logits", "pred_boxes"}]`` of every layer but the last."""
        return [
            {"pred_logits": a, "pred_boxes": b}
            for a, b in zip(outputs_class[:-1], outputs_coord[:-1], strict=True)
        ]

    def weighted_losses(
        self, loss_dict: dict[str, torch.Tensor], weight_dict: dict[str, float]
    ) -> dict[str, torch.Tensor]:
        """Each loss times its weight in ``weight_dict`` (:func:`detrkit.modeling.criterion.weight_losses`).

        A loss key without a weight is an error (a ``KeyError`` naming the unweighted keys and the keys of
        ``weight_dict``), where detrex keeps such a loss at weight 1: a config must weight every loss its
        criterion returns, and weight 0 keeps a loss for logging only."""
        return weight_losses(loss_dict, weight_dict)

    def inference(
        self, box_cls: torch.Tensor, box_pred: torch.Tensor, image_sizes: list[tuple[int, int]]
    ) -> list[Instances]:
        """Top-``select_box_nums_for_evaluation`` detections over query x class scores (see
        :func:`~detrkit.modeling.postprocessing.topk_detections`)."""
        return topk_detections(box_cls, box_pred, image_sizes, self.select_box_nums_for_evaluation)

    def eval_results(
        self, box_cls: torch.Tensor, box_pred: torch.Tensor, batched_inputs: list[dict], images: ImageList
    ) -> list[dict[str, Instances]]:
        """``[{"instances": Instances}]`` rescaled to each input's ``"height"``/``"width"`` (default: the
        size the model saw)."""
        processed = []
        for result, x, (h, w) in zip(
            self.inference(box_cls, box_pred, images.image_sizes),
            batched_inputs,
            images.image_sizes,
            strict=True,
        ):
            processed.append(
                {"instances": detector_postprocess(result, x.get("height", h), x.get("width", w))}
            )
        return processed


def _query_order(decoder: nn.Module) -> Callable[..., torch.Tensor] | None:
    """The ``query_order(layer_idx, layer_output, class_embed) -> (bs, nq)`` method of the decoder's
    ``between_layers`` hook, or None (no hook, or one that keeps the order)."""
    return getattr(getattr(decoder, "between_layers", None), "query_order", None)


def _named_float_tensors(value, name: str) -> Iterator[tuple[str, torch.Tensor]]:
    """``(path, tensor)`` of every floating-point tensor in nested dicts, lists and tuples, with paths such as
    ``outputs["aux_outputs"][0]["pred_boxes"]``."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point():
            yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _named_float_tensors(item, f"{name}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _named_float_tensors(item, f"{name}[{index}]")


def _check_finite_predictions(criterion: nn.Module, args: tuple) -> None:
    """Forward pre-hook of the criterion: FloatingPointError naming every prediction in ``args[0]`` (the
    outputs dict) that holds a NaN or inf. One device synchronisation per call."""
    if not args:
        return
    named = list(_named_float_tensors(args[0], "outputs"))
    if not named:
        return
    finite = torch.stack([torch.isfinite(tensor).all() for _, tensor in named]).tolist()
    bad = [name for (name, _), ok in zip(named, finite, strict=True) if not ok]
    if bad:
        raise FloatingPointError(
            f"Model outputs are not finite (NaN or inf) before {type(criterion).__name__}: {', '.join(bad)}"
        )
