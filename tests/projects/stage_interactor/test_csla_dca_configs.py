"""The CSLA / DCA configs: they build the cross-stage criteria and dual cross-attention decoders, the DCA
variant adds exactly the second cross-attention (and its norm) of each layer, the models train at tiny
sizes, and Rank-DETR's re-sorted queries reach the cross-stage criterion in one query order."""

from pathlib import Path

import pytest
import torch
from tiny_configs import TINY, config_loader, tiny_batch, train_and_evaluate

from detrkit.config import LazyConfig, instantiate
from detrkit.layers.multi_scale_deform_attn import MultiScaleDeformableAttention
from detrkit.modeling.criterion import DINOCriterion, TwoStageCriterion, build_weight_dict
from detrkit.modeling.matcher import HungarianMatcher
from detrkit.modeling.meta_arch import DINO
from detrkit.modeling.transformer import DINOTransformerDecoder
from detrkit.utils.analysis import trainable_parameter_count
from detrkit.utils.events import EventStorage
from detrkit_projects.rank_detr.modeling import QueryRanking, RankAdaptiveClassHead
from detrkit_projects.stage_interactor.configs.helpers import with_csla, with_dca
from detrkit_projects.stage_interactor.modeling.cross_stage_label_assignment import CrossStageClassLoss

ROOT = Path(__file__).parents[3] / "projects"
CONFIGS = ROOT / "stage_interactor" / "configs"


load = config_loader(CONFIGS)


def is_cross_stage(criterion, cls) -> bool:
    """The LazyCall ``criterion`` is a ``cls`` whose class loss is cross-stage, with the paper's scope and
    threshold, and the focal loss (the fallback's default) on the proposals and denoising queries."""
    csla = criterion.class_loss
    return (
        criterion._target_ is cls
        and csla._target_ is CrossStageClassLoss
        and (csla.scope, csla.iou_threshold, csla.fallback) == ((-1, None), 0.5, None)
        and (csla.alpha, csla.gamma) == (0.25, 2.0)
        and "alpha" not in criterion
    )


def test_configs_use_the_cross_stage_class_loss():
    dino = LazyConfig.load(str(CONFIGS / "dino_csla_r50_4scale_12ep.py"))
    assert is_cross_stage(dino.model.criterion, DINOCriterion) and dino.train.max_iter == 90000
    h_detr = LazyConfig.load(str(CONFIGS / "h_detr_csla_r50_12ep.py"))
    assert is_cross_stage(h_detr.model.criterion.criterion, TwoStageCriterion)
    shapes = LazyConfig.load(str(CONFIGS / "dino_csla_shapes.py"))
    assert is_cross_stage(shapes.model.criterion, DINOCriterion) and shapes.train.max_iter == 720


def test_dca_adds_exactly_one_cross_attention_and_norm_per_layer():
    dino = instantiate(load(ROOT / "dino" / "configs" / "dino_r50_4scale_12ep.py").model)
    dca = instantiate(load(CONFIGS / "dino_csla_dca_r50_4scale_12ep.py").model)
    assert type(dca.transformer.decoder) is DINOTransformerDecoder
    assert dca.transformer.decoder.num_cross_attentions == 2
    # one deformable attention: offsets 256 -> 8 heads x 4 levels x 4 points x 2, weights 256 -> 128,
    # value and output projections 256 -> 256, all with biases; its post-norm: 2 x 256
    msda = (256 * 256 + 256) + (256 * 128 + 128) + 2 * (256 * 256 + 256)
    extra = trainable_parameter_count(dca) - trainable_parameter_count(dino)
    assert extra == 6 * (msda + 2 * 256)
    layer = dca.transformer.decoder.layers[0]
    assert layer.operation_order == (
        "self_attn", "norm", "cross_attn", "norm", "cross_attn", "norm", "ffn", "norm"
    )  # fmt: skip
    assert [type(a) for a in layer.attentions[1:]] == [MultiScaleDeformableAttention] * 2


def test_with_helpers_reject_unknown_classes():
    cfg = LazyConfig.load(str(CONFIGS / "dino_csla_r50_4scale_12ep.py"))
    with pytest.raises(ValueError, match="already cross-stage"):
        with_csla(cfg.model)
    cfg.model.criterion.class_loss = None
    cfg.model.criterion._target_ = "some.module.Criterion"
    with pytest.raises(ValueError, match="some.module.Criterion is not a criterion with the slot"):
        with_csla(cfg.model)
    assert cfg.model.criterion.class_loss is None  # nothing changed
    cfg.model.transformer.decoder._target_ = "torch.nn.Linear"
    with pytest.raises(ValueError, match="torch.nn.Linear is not a decoder with the slot"):
        with_dca(cfg.model)
    assert "num_cross_attentions" not in cfg.model.transformer.decoder  # nothing changed


def test_decoders_take_any_positive_number_of_cross_attentions():
    decoder = DINOTransformerDecoder(num_layers=1, num_cross_attentions=3)
    assert decoder.layers[0].operation_order.count("cross_attn") == 3
    with pytest.raises(ValueError, match="num_cross_attentions=0: a decoder layer needs at least 1"):
        DINOTransformerDecoder(num_cross_attentions=0)


def test_with_helpers_take_detrex_classes_by_name():
    # detrex's classes, named as a saved config names them (detrex itself: tests/integration)
    cfg = LazyConfig.load(str(ROOT / "dino" / "configs" / "dino_r50_4scale_12ep.py"))
    cfg.model.criterion._target_ = "projects.dino.modeling.dn_criterion.DINOCriterion"
    cfg.model.transformer.decoder._target_ = "projects.dino.modeling.dino_transformer.DINOTransformerDecoder"
    with_csla(cfg.model)
    with_dca(cfg.model)
    assert is_cross_stage(cfg.model.criterion, DINOCriterion)
    assert cfg.model.transformer.decoder._target_ is DINOTransformerDecoder
    assert cfg.model.transformer.decoder.num_cross_attentions == 2


CSLA_TINY = [*TINY, "model.transformer.decoder.num_layers=3"]


def weight_dict_overrides(num_layers: int, **flags):
    return build_weight_dict({"loss_class": 1, "loss_bbox": 5, "loss_giou": 2}, num_layers, **flags)


@pytest.mark.parametrize(
    "name, extra, flags",
    [
        (
            "dino_csla_dca_r50_4scale_12ep.py",
            ["model.num_queries=20", "model.dn_number=10"],
            {"denoising": True},
        ),
        (
            "h_detr_csla_r50_12ep.py",
            [
                "model.num_queries_one2one=10",
                "model.num_queries_one2many=15",
                "model.transformer.two_stage_num_proposals=25",
                "model.criterion.criterion.num_classes=3",
            ],
            {"one2many": True},
        ),
    ],
)
def test_trains_at_tiny_sizes(name, extra, flags):
    torch.manual_seed(0)
    cfg = load(CONFIGS / name, CSLA_TINY + extra)
    criterion = cfg.model.criterion.get("criterion", cfg.model.criterion)
    criterion.weight_dict = weight_dict_overrides(3, **flags)
    train_and_evaluate(instantiate(cfg.model), tiny_batch())


def returned_as_detrex_does(module, args, out):
    """A forward hook that makes a transformer return detrex's five outputs (no query order)."""
    return out.inter_states, out.init_reference, out.inter_references, out.enc_state, out.enc_reference


@pytest.mark.parametrize("detrex_outputs", [False, True], ids=["detrkit-outputs", "detrex-outputs"])
def test_rank_dino_layers_reach_the_criterion_in_one_query_order(detrex_outputs):
    """Rank-DETR sorts the queries between layers. With the box heads at their zero initialisation, a query
    keeps its proposal box through every layer, so in one query order every layer predicts the same boxes;
    in the ranked orders they would differ. From a transformer that returns detrex's five outputs, the
    detector rebuilds the order with the decoder hook's rule."""
    torch.manual_seed(0)
    cfg = load(ROOT / "rank_detr" / "configs" / "rank_detr_shapes.py")
    cfg.model.criterion.class_loss = None  # Rank-DETR's decoder, DINO's focal class loss
    cfg.model.criterion.matcher._target_ = HungarianMatcher
    del cfg.model.criterion.matcher.matcher_change_iter, cfg.model.criterion.matcher.iou_order_alpha
    with_csla(cfg.model)
    model = instantiate(cfg.model)
    assert type(model) is DINO and isinstance(model.criterion.class_loss, CrossStageClassLoss)
    assert isinstance(model.class_bias, RankAdaptiveClassHead)
    assert isinstance(model.transformer.decoder.between_layers, QueryRanking)
    seen = {}
    model.criterion.register_forward_pre_hook(lambda module, args: seen.update(outputs=args[0]))
    model.transformer.register_forward_hook(lambda module, args, out: seen.update(query_ids=out.query_ids))
    if detrex_outputs:
        model.transformer.register_forward_hook(returned_as_detrex_does)
    model.train()
    with EventStorage(0):
        losses = model(tiny_batch(size=128))
    assert all(torch.isfinite(v) for v in losses.values())
    ids = seen["query_ids"]
    assert ids.shape[0] == 3 and not torch.equal(ids[1], ids[0])  # the queries were re-sorted
    layers = [*seen["outputs"]["aux_outputs"], seen["outputs"]]
    for layer in layers[1:]:
        torch.testing.assert_close(layer["pred_boxes"], layers[0]["pred_boxes"])
