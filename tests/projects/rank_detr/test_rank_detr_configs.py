"""The Rank-DETR configs: they load, build the official model's parameter count, and train with the real
criteria at tiny sizes (H-DETR and DINO versions, and the shapes demo config)."""

from pathlib import Path

import pytest
import torch
from tiny_configs import TINY, config_loader, tiny_batch, train_and_evaluate

from detrkit.config import LazyConfig, instantiate
from detrkit.modeling.meta_arch import DINO, HDeformableDETR
from detrkit.utils.analysis import trainable_parameter_count
from detrkit.utils.events import EventStorage
from detrkit_projects.rank_detr.modeling import HighOrderMatcher, QueryRanking, RankAdaptiveClassHead

CONFIGS = Path(__file__).parents[3] / "projects" / "rank_detr" / "configs"
DINO_CONFIGS = Path(__file__).parents[3] / "projects" / "dino" / "configs"

# measured from LeapLabTHU/Rank-DETR's rank_detr_r50_two_stage_12ep.py model
OFFICIAL_PARAMS = 52_070_476


load = config_loader(CONFIGS)


def has_rank_modules(model, detector: type) -> bool:
    """``model`` is a ``detector`` whose ``class_bias`` slot holds the rank-adaptive head and whose decoder's
    ``between_layers`` hook ranks the queries."""
    return (
        type(model) is detector
        and isinstance(model.class_bias, RankAdaptiveClassHead)
        and isinstance(model.transformer.decoder.between_layers, QueryRanking)
    )


def test_rank_detr_has_the_official_parameter_count():
    model = instantiate(load(CONFIGS / "rank_detr_r50_two_stage_12ep.py").model)
    assert has_rank_modules(model, HDeformableDETR)
    assert model.transformer.decoder.between_layers.query_groups == (300, 1500)
    assert trainable_parameter_count(model) == OFFICIAL_PARAMS


def test_rank_dino_adds_the_rank_modules_to_dino():
    dino = trainable_parameter_count(instantiate(load(DINO_CONFIGS / "dino_r50_4scale_12ep.py").model))
    model = instantiate(load(CONFIGS / "rank_dino_r50_4scale_12ep.py").model)
    assert has_rank_modules(model, DINO)
    head = 6 * 900 * 80
    rank_layers = 5 * (900 * 256 + 256 * 256 + 256 + 512 * 256 + 256)
    assert trainable_parameter_count(model) == dino + head + rank_layers


@pytest.mark.parametrize(
    "name, change_iter, max_iter",
    [
        ("rank_detr_r50_two_stage_12ep.py", 67500, 90000),
        ("rank_detr_r50_two_stage_36ep.py", 202500, 270000),
        ("rank_detr_swin_tiny_two_stage_12ep.py", 67500, 90000),
        ("rank_dino_r50_4scale_12ep.py", 67500, 90000),
        ("rank_detr_shapes.py", 540, 720),
    ],
)
def test_schedules_switch_the_matcher_at_three_quarters(name, change_iter, max_iter):
    cfg = LazyConfig.load(str(CONFIGS / name))
    criterion = cfg.model.criterion.get("criterion", cfg.model.criterion)
    assert criterion.matcher._target_ is HighOrderMatcher
    assert (criterion.matcher.matcher_change_iter, cfg.train.max_iter) == (change_iter, max_iter)
    assert criterion.matcher.iou_order_alpha == 4.0


@pytest.mark.parametrize(
    "name, extra",
    [
        (
            "rank_dino_r50_4scale_12ep.py",
            ["model.num_queries=20", "model.dn_number=10"],
        ),
        (
            "rank_detr_r50_two_stage_12ep.py",
            [
                "model.num_queries_one2one=10",
                "model.num_queries_one2many=15",
                "model.transformer.two_stage_num_proposals=25",
                "model.criterion.criterion.num_classes=3",
            ],
        ),
    ],
)
def test_trains_with_the_real_criterion_and_the_high_order_matcher(name, extra):
    torch.manual_seed(0)
    model = instantiate(load(CONFIGS / name, TINY + extra).model)
    matchers = [m for m in model.modules() if isinstance(m, HighOrderMatcher)]
    assert len(matchers) == 1  # one matcher serves every layer, one-to-many and encoder proposals
    with EventStorage(matchers[0].matcher_change_iter):
        assert matchers[0].high_order()
        train_and_evaluate(model, tiny_batch())


def test_shapes_config_trains_two_iterations():
    cfg = load(CONFIGS / "rank_detr_shapes.py")
    model = instantiate(cfg.model)
    assert has_rank_modules(model, DINO) and model.num_queries == 100
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr)
    model.train()
    batch = tiny_batch(size=128)  # 3 levels of 16x16, 8x8, 4x4 tokens: enough for 100 queries
    totals = []
    for iteration in range(2):
        with EventStorage(iteration):
            losses = model(batch)
        assert set(losses) == set(model.criterion.weight_dict)
        total = sum(losses.values())
        assert torch.isfinite(total)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(total.item())
    assert totals[1] != totals[0]
