"""Each project's criterion and matcher divide IoUs and GIoUs as its official code does: by union + 1e-6 and
hull + 1e-6 where the official code uses detrex's box_ops (DINO, H-Deformable-DETR, Focus-DETR, Rank-DETR;
CSLA on DINO, which has no official code, keeps DINO's), by union and hull where it uses torchvision's
(Salience DETR) or mmdet's, eps-free for boxes of positive area (the StageInteractor detector). The arithmetic
itself is tested in tests/structures, tests/modeling/criterion and tests/modeling/matcher."""

from pathlib import Path

import pytest

from detrkit.config import LazyConfig, instantiate

PROJECTS = Path(__file__).parents[2] / "projects"

CONFIGS = {
    "dino/configs/dino_r50_4scale_12ep.py": 1e-6,
    "dino/configs/h_deformable_detr_r50_two_stage_12ep.py": 1e-6,
    "focus_detr/configs/focus_detr_r50_4scale_12ep.py": 1e-6,
    "rank_detr/configs/rank_detr_r50_two_stage_12ep.py": 1e-6,
    "rank_detr/configs/rank_dino_r50_4scale_12ep.py": 1e-6,
    "salience_detr/configs/salience_detr_r50_4scale_12ep.py": 0.0,
    "salience_detr/configs/salience_detr_shapes.py": 0.0,
    "mix_and_match/configs/mix_salience_rank_csla_shapes.py": 0.0,
    "stage_interactor/configs/dino_csla_r50_4scale_12ep.py": 1e-6,
    "stage_interactor/configs/stageinteractor_r50_1x_coco.py": 0.0,
    "stage_interactor/configs/stageinteractor_shapes.py": 0.0,
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_criterion_and_matcher_use_the_official_iou_eps(name):
    criterion = instantiate(LazyConfig.load(str(PROJECTS / name)).model.criterion)
    criterion = getattr(criterion, "criterion", criterion)  # H-DETR's hybrid matching wraps the criterion
    assert (criterion.iou_eps, criterion.matcher.iou_eps) == (CONFIGS[name], CONFIGS[name])
