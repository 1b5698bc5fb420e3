"""Focus-DETR R50 4-scale, 36 epochs, with the paper's keep ratio 0.3 (Table 1: 50.4 AP, 154 GFLOPs) instead
of the official code's 0.5."""

from .focus_detr_r50_4scale_36ep import dataloader, lr_multiplier, model, optimizer, train

model.transformer.token_selector.keep_ratio = 0.3
train.output_dir = "./output/focus_detr_r50_4scale_36ep_rho03"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
