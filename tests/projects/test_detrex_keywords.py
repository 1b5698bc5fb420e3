"""Every paper module accepts the constructor keywords detrex passes to the module it replaces, so it drops
into a detrex config (detrex's recorded keywords: detrex_keywords.py)."""

import pytest
from detrex_keywords import DETREX_MODULES, accepted_keywords

CASES = [(detrex, cls) for detrex, (_, classes) in DETREX_MODULES.items() for cls in classes]


@pytest.mark.parametrize(("detrex", "cls"), CASES, ids=[f"{d.split('.')[-1]}-{c.__name__}" for d, c in CASES])
def test_accepts_every_detrex_keyword(detrex, cls):
    keywords = set(DETREX_MODULES[detrex][0].split())
    missing = sorted(keywords - accepted_keywords(cls))
    assert not missing, f"{cls.__name__} does not accept detrex's {detrex.split('.')[-1]} keywords {missing}"


def test_the_keyword_walk_follows_forwarded_kwargs():
    class Base:
        def __init__(self, a, b=1):
            pass

    class Forwarding(Base):
        def __init__(self, c, **kwargs):
            super().__init__(**kwargs)

    class Closed(Base):
        def __init__(self, d):
            super().__init__(d)

    assert accepted_keywords(Forwarding) == {"a", "b", "c"}
    assert accepted_keywords(Closed) == {"d"}
