"""Salience DETR (Hou et al., "Salience DETR: Enhancing Detection Transformer with Hierarchical Salience
Filtering Refinement", CVPR 2024) on detrkit's DINO."""
