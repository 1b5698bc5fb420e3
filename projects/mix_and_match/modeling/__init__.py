"""The config helpers that combine the papers' modules."""

from detrkit_projects.mix_and_match.modeling.salience_rank_csla import to_salience_rank_csla

__all__ = ["to_salience_rank_csla"]
