"""DINO and H-Deformable-DETR: the shared two-stage deformable DETR base that the four papers modify."""
