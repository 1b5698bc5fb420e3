"""Edits of LazyCall criterion configs that the papers' config helpers share: finding the criterion that
computes the matching losses, moving detrex's class-loss keywords onto a class-loss module, and adding an
extra loss with its weight. Each takes the config node it edits and changes it in place."""

from collections.abc import Mapping

from detrkit.config.model_edits import detrkit_class

__all__ = [
    "add_extra_loss",
    "detrkit_criterion_class",
    "matching_criterion",
    "set_class_loss",
    "take_focal_parameters",
]

DETREX_CLASS_LOSS_KEYWORDS = ("loss_class_type", "alpha", "gamma", "eos_coef")


def matching_criterion(criterion):
    """The LazyCall criterion whose ``class_loss`` and ``extra_losses`` apply: ``criterion`` itself, or the
    one a ``HybridMatchingCriterion`` (H-Deformable-DETR, Rank-DETR) wraps under ``criterion``."""
    return criterion["criterion"] if "criterion" in criterion else criterion


def take_focal_parameters(criterion) -> dict:
    """Removes detrex's class-loss keywords (``loss_class_type``, ``alpha``, ``gamma``, ``eos_coef``) from
    the LazyCall ``criterion`` and returns its focal ``alpha``/``gamma`` (those given), for the class-loss
    module that replaces them; a criterion that already has a ``class_loss`` gives that module's.

    Raises:
        ValueError: ``loss_class_type`` other than ``"focal_loss"``: the papers' class losses are focal.
    """
    if criterion.get("class_loss") is not None:
        return {k: criterion.class_loss[k] for k in ("alpha", "gamma") if k in criterion.class_loss}
    loss_type = criterion.get("loss_class_type")
    if loss_type not in (None, "focal_loss"):
        raise ValueError(
            f"the papers' class losses are focal; the criterion has loss_class_type {loss_type!r}"
        )
    focal = {k: criterion[k] for k in ("alpha", "gamma") if criterion.get(k) is not None}
    for key in DETREX_CLASS_LOSS_KEYWORDS:
        criterion.pop(key, None)
    return focal


def detrkit_criterion_class(target) -> type:
    """The detrkit criterion class for a LazyCall criterion's ``_target_`` (a class, or its dotted name as in
    a saved config): detrkit's ``SetCriterion`` family as it is, detrex's criteria (which have no
    ``class_loss``/``extra_losses`` slots, and need not be importable) as detrkit's class of the same role
    and keywords.

    Raises:
        ValueError: naming the target and the classes accepted.
    """
    from detrkit.modeling.criterion import DINOCriterion, SetCriterion, TwoStageCriterion

    detrex = {
        "detrex.modeling.criterion.criterion.SetCriterion": SetCriterion,
        "projects.h_deformable_detr.modeling.deformable_criterion.DeformableCriterion": TwoStageCriterion,
        "projects.dino.modeling.dn_criterion.DINOCriterion": DINOCriterion,
    }
    return detrkit_class(target, SetCriterion, detrex, "criterion")


def set_class_loss(criterion, class_loss) -> None:
    """Gives the LazyCall ``criterion`` the ``class_loss`` config (after :func:`take_focal_parameters`),
    its ``_target_`` made :func:`detrkit_criterion_class`."""
    criterion._target_ = detrkit_criterion_class(criterion._target_)
    criterion.class_loss = class_loss


def add_extra_loss(criterion, loss, weights: Mapping[str, float]) -> None:
    """Appends the LazyCall ``loss`` to the ``extra_losses`` of the LazyCall ``criterion`` (its ``_target_``
    made :func:`detrkit_criterion_class`) and the ``weights`` of its loss keys to the criterion's
    ``weight_dict``."""
    criterion._target_ = detrkit_criterion_class(criterion._target_)
    criterion.extra_losses = [*criterion.get("extra_losses", []), loss]
    criterion.weight_dict = {**criterion.weight_dict, **weights}
