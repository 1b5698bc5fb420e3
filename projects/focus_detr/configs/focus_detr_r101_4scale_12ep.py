"""Focus-DETR R101 4-scale, 12 epochs on COCO (detrex's `focus_detr_r101_4scale_12ep.py`; like detrex, it
expects torchvision's ImageNet ResNet-101 converted to a detectron2 pickle at `./pretrained/r101_v1.pkl`)."""

from .focus_detr_r50_4scale_12ep import dataloader, lr_multiplier, model, optimizer, train

model.backbone.depth = 101
train.init_checkpoint = "./pretrained/r101_v1.pkl"
train.output_dir = "./output/focus_detr_r101_4scale_12ep"
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides
