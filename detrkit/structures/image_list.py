"""A batch of images of different sizes, padded to one tensor (detectron2's ``ImageList``)."""

import torch
import torch.nn.functional as F

__all__ = ["ImageList"]


class ImageList:
    """``tensor``: ``(N, C, H, W)`` padded images; ``image_sizes``: each image's ``(h, w)`` unpadded."""

    def __init__(self, tensor: torch.Tensor, image_sizes: list[tuple[int, int]]):
        self.tensor = tensor
        self.image_sizes = image_sizes

    def __len__(self) -> int:
        return len(self.image_sizes)

    def __getitem__(self, idx: int) -> torch.Tensor:
        """The ``idx``-th image without its padding, ``(C, h, w)``."""
        h, w = self.image_sizes[idx]
        return self.tensor[idx, ..., :h, :w]

    def to(self, *args, **kwargs) -> "ImageList":
        return ImageList(self.tensor.to(*args, **kwargs), self.image_sizes)

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    @staticmethod
    def from_tensors(
        tensors: list[torch.Tensor], size_divisibility: int = 0, pad_value: float = 0.0
    ) -> "ImageList":
        """Pads ``(C, h_i, w_i)`` tensors at the bottom/right to a common size, rounded up to a multiple of
        ``size_divisibility`` when it is positive."""
        if not tensors:
            raise ValueError("ImageList.from_tensors needs at least one tensor")
        channels = tensors[0].shape[:-2]
        for t in tensors:
            if t.shape[:-2] != channels:
                raise ValueError(
                    f"ImageList.from_tensors: leading dims differ, {tuple(t.shape)} vs {tuple(channels)}"
                )
        image_sizes = [(int(t.shape[-2]), int(t.shape[-1])) for t in tensors]
        max_h = max(h for h, _ in image_sizes)
        max_w = max(w for _, w in image_sizes)
        if size_divisibility > 1:
            max_h = (max_h + size_divisibility - 1) // size_divisibility * size_divisibility
            max_w = (max_w + size_divisibility - 1) // size_divisibility * size_divisibility
        batched = torch.stack(
            [F.pad(t, (0, max_w - t.shape[-1], 0, max_h - t.shape[-2]), value=pad_value) for t in tensors]
        )
        return ImageList(batched.contiguous(), image_sizes)
