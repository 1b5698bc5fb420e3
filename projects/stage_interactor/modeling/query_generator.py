"""AdaMixer's initial queries: learned content vectors and boxes that cover the whole image."""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InitialQueryGenerator"]


class InitialQueryGenerator(nn.Module):
    """``num_queries`` content vectors (an embedding ``~ N(0, 1)``, layer-normalised without affine
    parameters) and, for every image, ``num_queries`` copies of the box covering it in xyzr form
    ``(w / 2, h / 2, log2 sqrt(w h), log2(h / w))`` (not learned).

    Args:
        num_queries: ``N``.
        embed_dim: ``C``.
    """

    def __init__(self, num_queries: int = 100, embed_dim: int = 256):
        super().__init__()
        self.num_queries, self.embed_dim = num_queries, embed_dim
        self.content = nn.Embedding(num_queries, embed_dim)
        nn.init.normal_(self.content.weight, 0.0, 1.0)

    def forward(self, image_sizes: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries ``(B, N, C)`` and boxes ``(B, N, 4)`` xyzr in pixels for images of sizes ``(h, w)``."""
        weight = self.content.weight
        query = F.layer_norm(weight, (self.embed_dim,))[None].expand(len(image_sizes), -1, -1)
        hw = torch.tensor(image_sizes, dtype=weight.dtype, device=weight.device)
        h, w = hw.unbind(-1)
        xyzr = torch.stack([w / 2, h / 2, 0.5 * torch.log2(w * h), torch.log2(h / w)], dim=-1)
        return query, xyzr[:, None].expand(-1, self.num_queries, -1)
