"""The classes and config helpers that combine the papers' modules."""

from projects.mix_and_match.modeling.salience_rank_csla import (
    CSLASalienceDETRCriterion,
    SalienceRankDETR,
    to_salience_rank_csla,
)

__all__ = ["CSLASalienceDETRCriterion", "SalienceRankDETR", "to_salience_rank_csla"]
