"""The StageInteractor detector at tiny sizes: detectron2 I/O in training and eval, gradients reaching
every trainable parameter, the box arithmetic, the stage schedule of filter reuse, and the criterion's
quality focal loss and cross-stage targets."""

import math

import pytest
import torch
from torch import nn

from detrkit.config import LazyConfig, instantiate
from detrkit.layers import ShapeSpec
from detrkit.modeling.criterion import SetCriterion, build_weight_dict
from detrkit.modeling.losses import quality_focal_loss
from detrkit.modeling.matcher import HungarianMatcher
from detrkit.modeling.meta_arch import QueryDetector, TwoStageDETR
from detrkit.structures.boxes import Boxes
from detrkit.structures.instances import Instances
from detrkit_projects.stage_interactor.modeling.cross_stage_label_assignment import CrossStageClassLoss
from detrkit_projects.stage_interactor.modeling.decoder import StageInteractorDecoder
from detrkit_projects.stage_interactor.modeling.query_generator import InitialQueryGenerator
from detrkit_projects.stage_interactor.modeling.stage_head import (
    StageInteractorStage,
    box_position_embedding,
    refine_xyzr,
    xyxy_to_xyzr,
    xyzr_to_xyxy,
)

CONFIG = "projects/stage_interactor/configs/models/stageinteractor_r50.py"


def tiny_model(**decoder):
    cfg = LazyConfig.load(CONFIG).model
    cfg.backbone.depth = 18
    cfg.neck.input_shapes = {
        name: ShapeSpec(channels=channels)
        for name, channels in zip(cfg.neck.in_features, (64, 128, 256, 512), strict=True)
    }
    cfg.neck.out_channels = 32
    cfg.query_generator.update(num_queries=6, embed_dim=32)
    cfg.decoder.update(
        num_stages=3,
        embed_dim=32,
        num_heads=4,
        feedforward_dim=16,
        num_groups=4,
        first_stage_points=2,
        num_points=2,
        num_subpoints=2,
        out_points=4,
        reuse_start=1,
        **decoder,
    )
    cfg.num_classes = 3
    cfg.select_box_nums_for_evaluation = 5
    cfg.criterion.weight_dict = build_weight_dict(
        {"loss_class": 2.0, "loss_bbox": 5.0, "loss_giou": 2.0}, num_decoder_layers=3, two_stage=False
    )
    return instantiate(cfg)


def batch():
    images = []
    for boxes, classes in (
        ([[4.0, 6.0, 30.0, 40.0]], [1]),
        ([[10.0, 10.0, 50.0, 30.0], [0, 0, 20, 20]], [2, 0]),
    ):
        instances = Instances((48, 64))
        instances.gt_boxes = Boxes(torch.tensor(boxes))
        instances.gt_classes = torch.tensor(classes)
        images.append(
            {"image": torch.rand(3, 48, 64) * 255, "height": 96, "width": 128, "instances": instances}
        )
    return images


def test_the_detector_is_a_query_detector_without_a_transformer_and_its_neck_gets_the_xavier_init():
    model = tiny_model()
    assert isinstance(model, QueryDetector) and not isinstance(model, TwoStageDETR)
    assert not hasattr(model, "transformer") and not hasattr(model, "position_embedding")
    convs = [m for m in model.neck.modules() if isinstance(m, nn.Conv2d)]
    # the convolutions' default init draws nonzero biases; the Xavier init zeroes them
    assert convs and all(not c.bias.any() for c in convs)


def test_training_forward_gives_every_stages_weighted_losses_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = tiny_model()
    # zero-initialised layers (filter generators, output projections, adapters, box heads) block the
    # gradient at initialisation; give every parameter a random value first
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.train()
    losses = model(batch())
    expected = {f"{k}{s}" for k in ("loss_class", "loss_bbox", "loss_giou") for s in ("", "_0", "_1")}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    missing = [
        n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())
    ]
    assert missing == []


def test_eval_forward_returns_detectron2_instances_in_original_pixels():
    torch.manual_seed(0)
    model = tiny_model().eval()
    with torch.no_grad():
        results = model(batch())
    assert len(results) == 2
    instances = results[0]["instances"]
    assert instances.image_size == (96, 128) and len(instances) == 5
    assert instances.pred_boxes.tensor.shape == (5, 4)
    # the initial boxes cover the image and the box heads start at zero: every box is the whole image
    assert torch.allclose(
        instances.pred_boxes.tensor, torch.tensor([0.0, 0.0, 128.0, 96.0]).expand(5, 4), atol=1e-3
    )
    assert (instances.scores[:-1] >= instances.scores[1:]).all()


def test_query_generator_boxes_cover_each_image():
    generator = InitialQueryGenerator(num_queries=3, embed_dim=8)
    query, xyzr = generator([(40, 80), (64, 32)])
    assert query.shape == (2, 3, 8)
    assert torch.allclose(query.mean(-1), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(xyzr_to_xyxy(xyzr[0, 0]), torch.tensor([0.0, 0.0, 80.0, 40.0]), atol=1e-4)
    assert torch.allclose(xyzr_to_xyxy(xyzr[1, 2]), torch.tensor([0.0, 0.0, 32.0, 64.0]), atol=1e-4)


def test_xyzr_conversions_and_refinement():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    xyzr = xyxy_to_xyzr(boxes)
    assert xyzr[0].tolist() == pytest.approx([20.0, 40.0, 0.5 * math.log2(800), math.log2(2)])
    assert torch.allclose(xyzr_to_xyxy(xyzr), boxes)
    refined = refine_xyzr(xyzr, torch.tensor([[0.5, -0.25, 1.0, 0.0]]))
    # x moves by half the width (20), y by a quarter of the height (40); z + 1 doubles both sides
    assert torch.allclose(xyzr_to_xyxy(refined), torch.tensor([[10.0, -10.0, 50.0, 70.0]]), atol=1e-4)


def test_box_position_embedding_interleaves_sin_and_cos_per_coordinate():
    xyzr = torch.tensor([[[500.0, 250.0, 3.0, -1.0]]])
    pe = box_position_embedding(xyzr, 16)
    scaled = [0.5, 0.25, 3.0, -1.0]
    expected = []
    for value in scaled:
        for i in range(2):
            freq = 10000 ** (2 * i / 4)
            expected += [math.sin(value / freq), math.cos(value / freq)]
    assert pe[0, 0].tolist() == pytest.approx(expected, abs=1e-6)


def test_filter_reuse_schedule_follows_the_official_stages():
    decoder = StageInteractorDecoder(num_stages=6, embed_dim=32, num_heads=4, feedforward_dim=16)
    reused = [stage.mixing.num_reused_filters for stage in decoder.stages]
    spatial = [stage.mixing.reuse_spatial for stage in decoder.stages]
    assert reused == [0, 0, 1, 2, 3, 4]
    assert spatial == [False, False, True, True, True, True]
    capped = StageInteractorDecoder(num_stages=6, embed_dim=32, num_heads=4, max_reused_filters=2)
    assert [s.mixing.num_reused_filters for s in capped.stages] == [0, 0, 1, 2, 2, 2]
    off = StageInteractorDecoder(num_stages=3, embed_dim=32, num_heads=4, filter_reuse=False)
    assert all(s.mixing.num_reused_filters == 0 and not s.mixing.reuse_spatial for s in off.stages)
    plain = StageInteractorDecoder(num_stages=4, embed_dim=32, num_heads=4, adapters=False)
    assert all(len(s.mixing.channel_adapters) == 0 and s.mixing.spatial_adapter is None for s in plain.stages)


@pytest.mark.parametrize(
    "switch",
    [
        dict(filter_reuse=False),
        dict(adapters=False),
        dict(static_mixing="spatial"),
        dict(max_reused_filters=1),
    ],
)
def test_ablation_switches_train(switch):
    torch.manual_seed(0)
    model = tiny_model(**switch).train()
    losses = model(batch())
    assert all(torch.isfinite(v) for v in losses.values())


def test_criterion_class_targets_are_gathered_ious_and_boxes_use_each_stages_matches():
    """Two stages, one image, one target: stage 1 matches query 0 (IoU 1 with its stage-1 box); stage 0
    matches query 1. Stage 0 gathers stages 0 and 1: query 0 gets IoU(target, its stage-0 box) and query 1
    its own; labels need IoU >= 0.5."""
    target = {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])}
    stage0_boxes = torch.tensor([[[0.5, 0.5, 0.4, 0.2], [0.5, 0.5, 0.4, 0.4]]])
    stage1_boxes = torch.tensor([[[0.5, 0.5, 0.4, 0.4], [0.1, 0.1, 0.1, 0.1]]])
    big = 10.0
    stage0_logits = torch.tensor([[[0.0, -big], [0.0, big]]])
    stage1_logits = torch.tensor([[[0.0, big], [0.0, -big]]])
    criterion = SetCriterion(
        num_classes=2,
        matcher=HungarianMatcher(2.0, 5.0, 2.0),
        weight_dict={},
        class_loss=CrossStageClassLoss(scope=(-1, None), quality_target="iou"),
        l1_box_format="xyxy",
        iou_eps=0.0,
    )
    outputs = {
        "pred_logits": stage1_logits,
        "pred_boxes": stage1_boxes,
        "aux_outputs": [{"pred_logits": stage0_logits, "pred_boxes": stage0_boxes}],
    }
    losses = criterion(outputs, [target])
    soft = torch.zeros(1, 2, 2)
    soft[0, 0, 1], soft[0, 1, 1] = 0.5, 1.0  # stage-0 box of query 0 covers half of the target
    assert losses["loss_class_0"].item() == pytest.approx(
        (quality_focal_loss(stage0_logits, soft, reduction="sum") / 2).item()
    )
    # stage 1 gathers stage 0's match of query 1 with IoU(target, stage-1 box of query 1) = 0: no label
    soft1 = torch.zeros(1, 2, 2)
    soft1[0, 0, 1] = 1.0
    assert losses["loss_class"].item() == pytest.approx(
        quality_focal_loss(stage1_logits, soft1, reduction="sum").item()
    )
    assert losses["loss_bbox"].item() == pytest.approx(0.0, abs=1e-6)
    assert losses["loss_giou_0"].item() == pytest.approx(0.0, abs=1e-6)


def test_self_attention_adds_the_log_iof_bias_per_head():
    torch.manual_seed(0)
    stage = StageInteractorStage(embed_dim=16, num_heads=2, feedforward_dim=8, num_classes=2, num_groups=2)
    stage.double()
    boxes = torch.tensor([[[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 25.0, 10.0], [40.0, 40.0, 50.0, 60.0]]])
    xyzr = xyxy_to_xyzr(boxes.double())
    query = torch.randn(1, 3, 16, dtype=torch.float64)
    # IoF = intersection / area of the row box: box 0 covers half of itself with box 1, box 1 a quarter
    iof = torch.tensor([[1.0, 0.5, 0.0], [0.25, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    x = query + box_position_embedding(xyzr, 16)
    attention = stage.attention
    q, k, v = (x @ attention.in_proj_weight.T + attention.in_proj_bias).split(16, dim=-1)
    heads = []
    for h in range(2):
        part = slice(8 * h, 8 * h + 8)
        logits = q[0, :, part] @ k[0, :, part].T / math.sqrt(8) + (iof + 1e-7).log() * stage.iof_tau[h]
        heads.append(logits.softmax(-1) @ v[0, :, part])
    attended = torch.cat(heads, -1) @ attention.out_proj.weight.T + attention.out_proj.bias
    expected = stage.attention_norm(x[0] + attended)
    assert torch.allclose(stage.self_attention(query, xyzr)[0], expected, atol=1e-6)
