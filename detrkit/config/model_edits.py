"""Edits of LazyCall model configs that the papers' config helpers share: the detrkit class that takes the
place of a detector's or decoder's ``_target_`` (detrex's classes have no slots for the papers' modules), so
that a helper fills a detrkit slot in detrkit's and detrex's configs alike."""

from detrkit.config.instantiate import locate

__all__ = ["detrkit_class", "detrkit_decoder_class", "detrkit_detector_class", "detrkit_dino_class"]


def detrkit_class(target, base: type, detrex: dict[str, type], what: str) -> type:
    """``target`` (a class, or its dotted name as in a saved config) when it is a subclass of ``base``;
    detrex's classes (named in ``detrex``: detrex need not be importable) as their detrkit equivalent.

    Raises:
        ValueError: naming the target and the classes accepted.
    """
    name = target if isinstance(target, str) else f"{target.__module__}.{target.__qualname__}"
    if name in detrex:
        return detrex[name]
    try:
        cls = locate(name) if isinstance(target, str) else target
    except ImportError:  # a dotted name that names nothing importable
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(
            f"{name} is not a {what} with the slot: use a subclass of detrkit's {base.__name__}, or one of "
            f"detrex's {sorted(detrex)} (replaced by its detrkit equivalent)"
        )
    return cls


def detrkit_detector_class(target) -> type:
    """The detrkit detector class for a LazyCall model's ``_target_``: a :class:`TwoStageDETR` subclass as it
    is (its ``class_bias`` slot), detrex's DINO and H-Deformable-DETR as detrkit's ``DINO`` and
    ``HDeformableDETR`` (the same keywords)."""
    from detrkit.modeling.meta_arch import DINO, HDeformableDETR, TwoStageDETR

    detrex = {
        "projects.dino.modeling.dino.DINO": DINO,
        "projects.h_deformable_detr.modeling.h_deformable_detr.HDeformableDETR": HDeformableDETR,
    }
    return detrkit_class(target, TwoStageDETR, detrex, "detector")


def detrkit_dino_class(target) -> type:
    """The detrkit DINO class for a LazyCall model's ``_target_``: a :class:`DINO` subclass as it is,
    detrex's DINO as detrkit's (the token-scoring transformers of Focus-DETR and Salience DETR return their
    token scores to a DINO, which passes them to the criterion).

    Raises:
        ValueError: naming the target and the classes accepted.
    """
    from detrkit.modeling.meta_arch import DINO

    return detrkit_class(target, DINO, {"projects.dino.modeling.dino.DINO": DINO}, "DINO detector")


def detrkit_decoder_class(target) -> type:
    """The detrkit decoder class for a LazyCall decoder's ``_target_``: a
    :class:`DeformableTransformerDecoder` subclass as it is (its ``num_cross_attentions`` and
    ``between_layers`` keywords), detrex's DINO and H-Deformable-DETR decoders as detrkit's
    ``DINOTransformerDecoder`` and ``DeformableTransformerDecoder`` (the same keywords and calls)."""
    from detrkit.modeling.transformer import DeformableTransformerDecoder, DINOTransformerDecoder

    detrex = {
        "projects.dino.modeling.dino_transformer.DINOTransformerDecoder": DINOTransformerDecoder,
        "projects.h_deformable_detr.modeling.h_deformable_transformer.HDeformableDetrTransformerDecoder": (
            DeformableTransformerDecoder
        ),
    }
    return detrkit_class(target, DeformableTransformerDecoder, detrex, "decoder")
