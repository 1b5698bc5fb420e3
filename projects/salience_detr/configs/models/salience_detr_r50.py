"""Salience DETR R50 4-scale (official `salience_detr_resnet50_800_1333.py`): DINO R50 4-scale
(projects/dino's config) with hierarchical salience filtering (levels 0.4/0.8/1.0/1.0, layers
1.0/0.8/0.6/0.6/0.4/0.2), the selective encoder, background embedding, cross-level token fusion, redundancy
removal, the IoU-aware class loss and `loss_salience` (weight 2); stem and res2 frozen."""

from detrkit_projects.salience_detr.configs.helpers import to_salience_detr

from ....dino.configs.models.dino_r50 import model

to_salience_detr(model)
model.backbone.freeze_at = 2  # official: stem and res2 frozen (detrex DINO: stem only)
