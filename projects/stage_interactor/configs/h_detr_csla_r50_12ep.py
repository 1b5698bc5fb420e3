"""H-Deformable-DETR R50 two-stage, 12 epochs on COCO, with cross-stage label assignment in both query
groups (one-to-one and one-to-many; StageInteractor Table 4). Everything else is
`projects/dino/configs/h_deformable_detr_r50_two_stage_12ep.py`."""

from detrkit_projects.stage_interactor.configs.helpers import with_csla

from ...dino.configs.h_deformable_detr_r50_two_stage_12ep import (
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

with_csla(model)
train.output_dir = "./output/h_detr_csla_r50_12ep"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
