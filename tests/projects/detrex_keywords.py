"""detrex's constructor keywords of the modules the paper modules replace (detrex commit e244e6c), and which
detrkit classes take each module's place. tests/projects/test_detrex_keywords.py checks that every detrkit
class accepts them; tests/integration/test_detrex_modules.py checks this record against detrex itself."""

import inspect

from detrkit.layers import MultiScaleDeformableAttention
from detrkit.modeling.criterion import DINOCriterion, SetCriterion, TwoStageCriterion
from detrkit.modeling.matcher import HungarianMatcher
from detrkit.modeling.meta_arch import DINO, HDeformableDETR
from detrkit.modeling.transformer import (
    DINOTransformer,
    DINOTransformerDecoder,
    DINOTransformerEncoder,
    HDeformableDetrTransformer,
    HDeformableDetrTransformerDecoder,
    SelectiveTokenEncoder,
)
from detrkit_projects.focus_detr.modeling import FocusDETRTransformer
from detrkit_projects.rank_detr.modeling import (
    HighOrderMatcher,
)
from detrkit_projects.salience_detr.modeling import (
    SalienceDETRTransformer,
)

# detrex class (module.QualName) -> (its constructor keywords, the detrkit classes that replace it)
DETREX_MODULES = {
    "projects.dino.modeling.dino.DINO": (
        "backbone position_embedding neck transformer embed_dim num_classes num_queries criterion pixel_mean "
        "pixel_std aux_loss select_box_nums_for_evaluation device dn_number label_noise_ratio "
        "box_noise_scale input_format vis_period",
        (DINO,),
    ),
    "projects.h_deformable_detr.modeling.h_deformable_detr.HDeformableDETR": (
        "backbone position_embedding neck transformer embed_dim num_classes num_queries_one2one "
        "num_queries_one2many criterion pixel_mean pixel_std aux_loss with_box_refine as_two_stage "
        "select_box_nums_for_evaluation device mixed_selection k_one2many lambda_one2many",
        (HDeformableDETR,),
    ),
    "projects.dino.modeling.dino_transformer.DINOTransformer": (
        "encoder decoder num_feature_levels two_stage_num_proposals learnt_init_query",
        (DINOTransformer, SalienceDETRTransformer, FocusDETRTransformer),
    ),
    "projects.h_deformable_detr.modeling.h_deformable_transformer.HDeformableDetrTransformer": (
        "encoder decoder num_feature_levels as_two_stage two_stage_num_proposals mixed_selection",
        (HDeformableDetrTransformer,),
    ),
    "projects.dino.modeling.dino_transformer.DINOTransformerEncoder": (
        "embed_dim num_heads feedforward_dim attn_dropout ffn_dropout num_layers post_norm "
        "num_feature_levels use_checkpoint",
        (DINOTransformerEncoder, SelectiveTokenEncoder),
    ),
    "projects.dino.modeling.dino_transformer.DINOTransformerDecoder": (
        "embed_dim num_heads feedforward_dim attn_dropout ffn_dropout num_layers return_intermediate "
        "num_feature_levels look_forward_twice use_checkpoint",
        (DINOTransformerDecoder,),
    ),
    "projects.h_deformable_detr.modeling.h_deformable_transformer.HDeformableDetrTransformerDecoder": (
        "embed_dim num_heads feedforward_dim attn_dropout ffn_dropout num_layers return_intermediate "
        "num_feature_levels look_forward_twice",
        (HDeformableDetrTransformerDecoder,),
    ),
    "projects.dino.modeling.dn_criterion.DINOCriterion": (
        "num_classes matcher weight_dict losses eos_coef loss_class_type alpha gamma two_stage_binary_cls",
        (DINOCriterion,),
    ),
    "projects.h_deformable_detr.modeling.deformable_criterion.DeformableCriterion": (
        "num_classes matcher weight_dict losses eos_coef loss_class_type alpha gamma",
        (TwoStageCriterion,),
    ),
    "detrex.modeling.criterion.criterion.SetCriterion": (
        "num_classes matcher weight_dict losses eos_coef loss_class_type alpha gamma",
        (SetCriterion,),
    ),
    "detrex.modeling.matcher.matcher.HungarianMatcher": (
        "cost_class cost_bbox cost_giou cost_class_type alpha gamma",
        (HungarianMatcher, HighOrderMatcher),
    ),
    "detrex.layers.multi_scale_deform_attn.MultiScaleDeformableAttention": (
        "embed_dim num_heads num_levels num_points img2col_step dropout batch_first",
        (MultiScaleDeformableAttention,),
    ),
}


def accepted_keywords(cls: type) -> set[str]:
    """The keyword names ``cls(...)`` accepts: its ``__init__``'s, and where that takes ``**kwargs`` and
    forwards them up the class hierarchy, the bases' too."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names - {"self"}
