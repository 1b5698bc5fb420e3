"""Focus-DETR (Zheng et al., "Less is More: Focus Attention for Efficient DETR", ICCV 2023) on DINO: a
foreground token selector scores the multi-scale tokens, the encoder updates only the selected ones (a
cascade of shrinking sets) with dual attention."""
