"""DINO R50 4-scale, 12 epochs on COCO, with cross-stage label assignment and dual cross-attention
(StageInteractor Table 4: 50.0 AP)."""

from detrkit_projects.stage_interactor.configs.helpers import with_dca

from .dino_csla_r50_4scale_12ep import dataloader, lr_multiplier, model, optimizer, train

with_dca(model)
train.output_dir = "./output/dino_csla_dca_r50_4scale_12ep"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
