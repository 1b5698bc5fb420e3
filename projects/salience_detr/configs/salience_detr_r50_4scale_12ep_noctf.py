"""Salience DETR R50 4-scale, 12 epochs, without cross-level token fusion (the paper's faster variant)."""

from .salience_detr_r50_4scale_12ep import dataloader, lr_multiplier, model, optimizer, train

model.transformer.token_fusion = None
train.output_dir = "./output/salience_detr_r50_4scale_12ep_noctf"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
