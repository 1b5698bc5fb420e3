"""Loss weights: building the suffixed weight dict of a config, and applying it to a loss dict."""

__all__ = ["build_weight_dict", "weight_losses"]


def build_weight_dict(
    base_weight_dict: dict,
    num_decoder_layers: int,
    two_stage: bool = True,
    denoising: bool = False,
    one2many: bool = False,
) -> dict[str, float]:
    """The weight of every loss key a criterion returns, from the weights of the final layer's losses.

    With ``base_weight_dict = {"loss_class": 1, "loss_bbox": 5, "loss_giou": 2}`` (key ``k``) the result
    holds ``k`` and, with the same weight:

    - ``k_<i>`` for the ``num_decoder_layers - 1`` aux layers, i = 0 .. L-2;
    - ``k_enc`` if ``two_stage`` (encoder proposals);
    - ``k_dn`` and ``k_dn_<i>`` if ``denoising`` (DINO's denoising queries, final and aux layers);
    - ``k_one2many`` and ``k_<i>_one2many`` if ``one2many`` (H-Deformable-DETR's one-to-many branch).

    Same keys as detrex's configs build (``aux_weight_dict`` in ``dino_r50.py``), where the denoising
    weights equal the matching ones.
    """
    base = dict(base_weight_dict)
    layer_suffixes = [""] + [f"_{i}" for i in range(num_decoder_layers - 1)]
    weights = {k + s: v for s in layer_suffixes for k, v in base.items()}
    if two_stage:
        weights.update({k + "_enc": v for k, v in base.items()})
    if denoising:
        weights.update({k + "_dn" + s: v for s in layer_suffixes for k, v in base.items()})
    if one2many:
        weights.update({k + s + "_one2many": v for s in layer_suffixes for k, v in base.items()})
    return weights


def weight_losses(loss_dict: dict, weight_dict: dict) -> dict:
    """``{k: loss_dict[k] * weight_dict[k]}``: the training dict a meta-architecture returns (the trainer
    sums its values). detrex's meta-architectures do this in place and leave keys without a weight
    unweighted; here a key without a weight is an error, so a weight dict that misses a suffix cannot
    silently train that loss with weight 1 (give weight 0 to keep a loss for logging only)."""
    missing = sorted(k for k in loss_dict if k not in weight_dict)
    if missing:
        raise KeyError(
            f"losses {missing} have no weight in the criterion's weight_dict, whose keys are "
            f"{sorted(weight_dict)} (see build_weight_dict; weight 0 keeps a loss for logging only)"
        )
    return {k: v * weight_dict[k] for k, v in loss_dict.items()}
