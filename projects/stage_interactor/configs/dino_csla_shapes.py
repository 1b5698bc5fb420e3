"""The shapes demo's small DINO (projects/dino's `dino_shapes.py`, everything else unchanged) with
cross-stage label assignment over its 3 decoder layers."""

from projects.stage_interactor.modeling.lazy_configs import with_csla

from ...dino.configs.dino_shapes import dataloader, lr_multiplier, model, optimizer, train

model = with_csla(model)
train.output_dir = "./output/dino_csla_shapes"
dataloader.evaluator.output_dir = train.output_dir
