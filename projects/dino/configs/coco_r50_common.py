"""The COCO training recipe shared by the R50 DINO and H-DETR configs (detrex's): AdamW lr 1e-4, weight
decay 1e-4, backbone lr x0.1, gradient clipping 0.1, batch 16, ImageNet R-50 initialisation."""

from detrkit.config import get_config

dataloader = get_config("common/data/coco_detr.py").dataloader
optimizer = get_config("common/optim.py").AdamW
train = get_config("common/train.py").train
dataloader.evaluator.output_dir = "${train.output_dir}"  # follows train.output_dir overrides

train.init_checkpoint = "detectron2://ImageNetPretrained/torchvision/R-50.pkl"
train.eval_period = 5000
train.log_period = 20
train.checkpointer.period = 5000
train.clip_grad.enabled = True
train.clip_grad.params.max_norm = 0.1
train.clip_grad.params.norm_type = 2

optimizer.lr = 1e-4
optimizer.betas = (0.9, 0.999)
optimizer.weight_decay = 1e-4
optimizer.params.lr_factor_func = lambda module_name: 0.1 if "backbone" in module_name else 1

dataloader.train.num_workers = 16
dataloader.train.total_batch_size = 16
