"""Rank-DETR (Pu et al., "Rank-DETR for High Quality Object Detection", NeurIPS 2023) on
H-Deformable-DETR (the official code) and on DINO (the paper's eq. 4)."""
