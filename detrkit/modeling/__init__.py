"""Detector building blocks, each a slot a config fills: backbones, necks, the deformable transformer and
its query selector / denoising, matchers, criteria and losses, and the meta-architectures."""
