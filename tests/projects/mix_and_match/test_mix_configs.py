"""The mix-and-match configs: Salience DETR's (or Focus-DETR's) encoder and selection, Rank-DETR's decoder,
head and matcher, and StageInteractor's cross-stage label assignment build together, by config alone, and
train on shapes."""

import ast
from pathlib import Path

import pytest
import torch

from detrkit.config import LazyConfig, instantiate
from detrkit.modeling.criterion import DINOCriterion, FocalClassLoss
from detrkit.modeling.meta_arch import DINO
from detrkit.modeling.transformer import DINOTransformerDecoder
from detrkit.structures import Boxes, Instances
from detrkit.utils.events import EventStorage
from detrkit_projects.focus_detr.modeling import FocusDETRTransformer, ForegroundTokenLoss
from detrkit_projects.mix_and_match.configs.helpers import to_salience_rank_csla
from detrkit_projects.rank_detr.modeling import (
    GIoUAwareClassLoss,
    HighOrderMatcher,
    QueryRanking,
    RankAdaptiveClassHead,
)
from detrkit_projects.salience_detr.modeling import (
    IoUAwareClassLoss,
    RedundancyRemovalQuerySelector,
    SalienceDETRTransformer,
)
from detrkit_projects.stage_interactor.modeling import CrossStageClassLoss

CONFIGS = Path(__file__).parents[3] / "projects" / "mix_and_match" / "configs"


def shapes_batch(size: int = 128):
    g = torch.Generator().manual_seed(0)
    batch = []
    for boxes, classes in [([[4.0, 6, 40, 30], [60, 50, 120, 122]], [0, 2]), ([[10.0, 70, 50, 110]], [1])]:
        instances = Instances((size, size))
        instances.gt_boxes = Boxes(torch.tensor(boxes))
        instances.gt_classes = torch.tensor(classes, dtype=torch.int64)
        image = torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
        batch.append({"image": image, "height": size, "width": size, "instances": instances})
    return batch


def test_coco_config_combines_the_three_papers():
    cfg = LazyConfig.load(str(CONFIGS / "mix_salience_rank_csla_r50_4scale_12ep.py"))
    assert cfg.model._target_ is DINO and cfg.model.class_bias._target_ is RankAdaptiveClassHead
    assert cfg.model.transformer._target_ is SalienceDETRTransformer
    assert cfg.model.transformer.query_selector.require_num_queries
    decoder = cfg.model.transformer.decoder
    assert decoder._target_ is DINOTransformerDecoder and decoder.between_layers._target_ is QueryRanking
    criterion = cfg.model.criterion  # Salience's IoU-aware loss stays on the proposals and denoising queries
    assert criterion._target_ is DINOCriterion and criterion.class_loss._target_ is CrossStageClassLoss
    assert criterion.class_loss.fallback._target_ is IoUAwareClassLoss and criterion.iou_eps == 0.0
    assert cfg.model.criterion.matcher.matcher_change_iter == 67500
    assert cfg.model.backbone.freeze_at == 2 and cfg.train.max_iter == 90000
    with pytest.raises(ValueError, match="needs a Salience DETR config"):
        to_salience_rank_csla(
            LazyConfig.load(str(CONFIGS.parents[1] / "dino/configs/dino_shapes.py")).model, 1
        )


def test_focus_rank_csla_config_combines_the_three_papers_by_config_alone():
    """Focus-DETR's encoder, selector and foreground loss, Rank-DETR's ranking decoder, head, GIoU-aware class
    loss and high-order matcher, and cross-stage label assignment: every module of the built model is a
    detrkit or paper-project class, and the mix_and_match project defines no class at all."""
    cfg = LazyConfig.load(str(CONFIGS / "mix_focus_rank_csla_shapes.py"))
    cfg.model.device = "cpu"
    model = instantiate(cfg.model)
    assert type(model) is DINO and isinstance(model.transformer, FocusDETRTransformer)
    assert isinstance(model.transformer.decoder.between_layers, QueryRanking)
    assert isinstance(model.class_bias, RankAdaptiveClassHead)
    criterion = model.criterion
    assert isinstance(criterion.class_loss, CrossStageClassLoss)
    assert isinstance(criterion.class_loss.fallback, GIoUAwareClassLoss)  # denoising queries
    assert type(criterion.enc_class_loss) is FocalClassLoss  # encoder proposals, as Rank-DETR's code
    assert [type(loss) for loss in criterion.extra_losses] == [ForegroundTokenLoss]
    assert isinstance(criterion.matcher, HighOrderMatcher) and criterion.matcher.matcher_change_iter == 540
    modules = {type(m).__module__ for m in model.modules()}
    assert not any(name.startswith("detrkit_projects.mix_and_match") for name in modules)
    for path in CONFIGS.parent.rglob("*.py"):
        assert not [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)], path
    coco = LazyConfig.load(str(CONFIGS / "mix_focus_rank_csla_r50_4scale_12ep.py"))
    assert coco.model.criterion.matcher.matcher_change_iter == 67500 and coco.train.max_iter == 90000
    assert coco.model.criterion.class_loss._target_ is CrossStageClassLoss


@pytest.mark.parametrize(
    ("name", "token_loss"),
    [("mix_salience_rank_csla_shapes.py", "loss_salience"), ("mix_focus_rank_csla_shapes.py", "loss_select")],
)
def test_shapes_config_trains_a_few_iterations(name, token_loss):
    torch.manual_seed(0)
    cfg = LazyConfig.load(str(CONFIGS / name))
    cfg.model.device = "cpu"
    model = instantiate(cfg.model)
    assert isinstance(model.criterion.matcher, HighOrderMatcher)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr)
    model.train()
    totals = []
    for iteration in range(3):
        with EventStorage(iteration):
            losses = model(shapes_batch())
        assert set(losses) == set(model.criterion.weight_dict) and token_loss in losses
        total = sum(losses.values())
        assert torch.isfinite(total)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert len(set(totals)) == 3
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    model.eval()
    with torch.no_grad():
        assert len(model(shapes_batch()[:1])[0]["instances"]) > 0


def test_rank_decoder_needs_every_query_kept():
    selector = RedundancyRemovalQuerySelector(embed_dim=8, num_queries=4, require_num_queries=True)
    spatial_shapes = torch.tensor([[2, 2]])  # 4 tokens: NMS of +-1 cell boxes keeps 2 (diagonal ones)
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6]])
    with pytest.raises(ValueError, match="kept 2 tokens in some image, fewer than the 4 queries"):
        selector.select_indices(scores, spatial_shapes, num_queries=4)
    assert selector.select_indices(scores, spatial_shapes, num_queries=2).shape == (1, 2)
    selector.require_num_queries = False  # Salience DETR's own selection returns the survivors
    assert selector.select_indices(scores, spatial_shapes, num_queries=4).shape == (1, 2)
