"""Maps the parameter names of a foreign checkpoint (e.g. a torchvision ResNet's ``layer1.0.conv1.weight``)
onto a model's (``backbone.body.layer1.0.conv1.weight``) by matching name suffixes, like detectron2's
``align_and_update_state_dicts`` does for checkpoints flagged with ``matching_heuristics``."""

import logging

__all__ = ["align_and_update_state_dicts"]

logger = logging.getLogger(__name__)


def _is_dotted_suffix(model_key: str, ckpt_key: str) -> bool:
    return model_key == ckpt_key or model_key.endswith("." + ckpt_key)


def align_and_update_state_dicts(model_state_dict: dict, ckpt_state_dict: dict) -> dict:
    """Renames the entries of ``ckpt_state_dict`` to the model's names.

    Each model key takes the longest checkpoint key that is a suffix of it at a ``.`` boundary and has the
    same shape. Checkpoint keys matching no model key keep their names (so the loader reports them as
    unexpected).

    Args:
        model_state_dict: ``name -> tensor`` of the model.
        ckpt_state_dict: ``name -> tensor`` of the checkpoint.
    Returns:
        the checkpoint's tensors under the model's names, plus the unmatched ones under their own names.
    Raises:
        ValueError: if one checkpoint key is the best match of two model keys (ambiguous).
    """
    matched_by: dict[str, str] = {}
    result = {}
    for model_key, model_value in model_state_dict.items():
        candidates = [
            k
            for k, v in ckpt_state_dict.items()
            if _is_dotted_suffix(model_key, k) and tuple(v.shape) == tuple(model_value.shape)
        ]
        if not candidates:
            continue
        ckpt_key = max(candidates, key=len)
        if ckpt_key in matched_by:
            raise ValueError(
                f"Checkpoint key {ckpt_key!r} matches two keys of the model ({matched_by[ckpt_key]!r} and "
                f"{model_key!r}); cannot load it unambiguously"
            )
        matched_by[ckpt_key] = model_key
        result[model_key] = ckpt_state_dict[ckpt_key]
        if ckpt_key != model_key:
            logger.debug(f"{ckpt_key} -> {model_key}")
    renamed = sum(1 for c, m in matched_by.items() if c != m)
    logger.info(f"Matched {len(matched_by)} checkpoint keys to the model by name suffix ({renamed} renamed)")
    for key, value in ckpt_state_dict.items():
        if key not in matched_by and key not in result:
            result[key] = value
    return result
