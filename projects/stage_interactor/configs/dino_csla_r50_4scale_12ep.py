"""DINO R50 4-scale, 12 epochs on COCO, with cross-stage label assignment (StageInteractor Table 4: DINO
49.2 -> 49.7 AP): each decoder layer's class targets gathered from the matches of layers [i - 1, L] with
IoU >= 0.5. Everything else is `projects/dino/configs/dino_r50_4scale_12ep.py`."""

from detrkit_projects.stage_interactor.configs.helpers import with_csla

from ...dino.configs.dino_r50_4scale_12ep import dataloader, lr_multiplier, model, optimizer, train

with_csla(model)
train.output_dir = "./output/dino_csla_r50_4scale_12ep"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
