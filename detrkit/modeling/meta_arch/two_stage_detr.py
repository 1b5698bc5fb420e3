"""What DINO and H-Deformable-DETR share beyond :class:`QueryDetector`: position embeddings of the neck's
padding masks, the two-stage deformable transformer and the per-layer prediction heads with box
refinement."""

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from detrkit.layers.logits import inverse_sigmoid
from detrkit.layers.mlp import MLP
from detrkit.modeling.meta_arch.query_detector import QueryDetector
from detrkit.modeling.transformer.outputs import compose_query_orders
from detrkit.structures.image_list import ImageList

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


class TwoStageDETR(QueryDetector):
    """Base of the two-stage deformable DETRs; subclasses write ``forward`` and place the model on their
    ``device``.

    It owns ``class_embed`` and ``bbox_embed``: ``num_layers + 1`` independent copies (one per decoder layer,
    the last for the encoder proposals) of ``Linear(C, num_classes)`` (bias ``-log((1 - 0.01) / 0.01)``, focal
    prior 0.01) and ``MLP(C, C, 4, 3)`` (last layer zero), also assigned to ``transformer.decoder`` as in
    detrex; their random weights are drawn before the neck's Xavier init (detrex's order). An encoder that
    scores its tokens with per-layer class heads (``class_heads``, e.g. the
    :class:`~detrkit.modeling.transformer.SelectiveTokenEncoder` of Focus-DETR and Salience DETR) gets the
    encoder proposals' head ``class_embed[-1]`` for every layer (``encoder_class_heads``, the same module
    ``num_layers`` times, as in both official codes).

    Args:
        backbone, neck, num_classes, criterion, pixel_mean, pixel_std, select_box_nums_for_evaluation,
            size_divisibility: see :class:`QueryDetector`.
        position_embedding: padding mask ``(bs, h, w)`` -> ``(bs, C, h, w)``.
        transformer: a two-stage deformable transformer whose ``decoder`` has ``num_layers``.
        embed_dim: ``C``.
        aux_loss: add every decoder layer's predictions to the outputs (``aux_outputs``).
        class_bias: a per-layer adjustment of the decoder layers' class logits, ``(num_layers, bs, nq,
            num_classes)`` in and out, applied in each layer's query order (e.g. Rank-DETR's
            ``RankAdaptiveClassHead``: biases by rank position); the decoder's ``between_layers`` hook must
            order the queries (have ``query_order``, e.g. Rank-DETR's ``QueryRanking``). None: no adjustment.

    Raises:
        ValueError: ``class_bias`` given and the decoder's ``between_layers`` hook has no ``query_order``.
    """

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
        class_bias: nn.Module | None = None,
        size_divisibility: int = 0,
    ):
        if class_bias is not None and _query_order(transformer.decoder) is None:
            raise ValueError(
                f"{type(self).__name__}: class_bias {type(class_bias).__name__} adjusts the logits of "
                f"ordered queries; the decoder {type(transformer.decoder).__name__} needs a between_layers "
                "hook that orders them (with a query_order method, e.g. Rank-DETR's QueryRanking)"
            )
        class_embed, bbox_embed = _per_layer_heads(embed_dim, num_classes, transformer.decoder.num_layers + 1)
        super().__init__(
            backbone=backbone,
            neck=neck,
            num_classes=num_classes,
            criterion=criterion,
            pixel_mean=pixel_mean,
            pixel_std=pixel_std,
            select_box_nums_for_evaluation=select_box_nums_for_evaluation,
            size_divisibility=size_divisibility,
        )
        self.position_embedding = position_embedding
        self.transformer = transformer
        self.embed_dim = embed_dim
        self.class_bias = class_bias
        self.aux_loss = aux_loss
        self.class_embed = class_embed
        self.bbox_embed = bbox_embed
        transformer.decoder.class_embed = class_embed
        transformer.decoder.bbox_embed = bbox_embed
        if hasattr(transformer.encoder, "class_heads"):
            self.encoder_class_heads = nn.ModuleList([class_embed[-1]] * transformer.encoder.num_layers)
            transformer.encoder.class_heads = self.encoder_class_heads

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


def _per_layer_heads(embed_dim: int, num_classes: int, num_pred: int) -> tuple[nn.ModuleList, nn.ModuleList]:
    """``num_pred`` independent copies of the class head ``Linear(C, num_classes)`` (focal prior 0.01) and of
    the box head ``MLP(C, C, 4, 3)`` (last layer zero)."""
    class_head = nn.Linear(embed_dim, num_classes)
    nn.init.constant_(class_head.bias, -math.log((1 - 0.01) / 0.01))
    box_head = MLP(embed_dim, embed_dim, 4, 3)
    nn.init.constant_(box_head.layers[-1].weight, 0)
    nn.init.constant_(box_head.layers[-1].bias, 0)
    return (
        nn.ModuleList(copy.deepcopy(class_head) for _ in range(num_pred)),
        nn.ModuleList(copy.deepcopy(box_head) for _ in range(num_pred)),
    )


def _query_order(decoder: nn.Module) -> Callable[..., torch.Tensor] | None:
    """The ``query_order(layer_idx, layer_output, class_embed) -> (bs, nq)`` method of the decoder's
    ``between_layers`` hook, or None (no hook, or one that keeps the order)."""
    return getattr(getattr(decoder, "between_layers", None), "query_order", None)
