"""The classes and config helpers that combine the papers' modules."""

from detrkit_projects.mix_and_match.modeling.salience_rank_csla import (
    CSLASalienceDETRCriterion,
    to_salience_rank_csla,
)

__all__ = [
    "CSLASalienceDETRCriterion",
    "to_salience_rank_csla",
]
