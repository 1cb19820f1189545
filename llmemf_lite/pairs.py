"""The domain-pair registry: which two Amazon domains make up each cross-domain pair.

One source of truth for pair names. Everything that takes a `domain_pair` string (importers, the synthetic world,
notebooks) looks it up here. Domain X comes first in every pair; its items get the low global ids (see
`llmemf_lite.data.dataset` for the id convention).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DomainPair:
    name: str                       # registry key, e.g. "food_kitchen"
    domains: tuple[str, str]        # short domain names (X, Y), e.g. ("food", "kitchen")
    amazon_categories: tuple[str, str]  # raw Amazon category names, e.g. ("Grocery_and_Gourmet_Food", ...)

    @property
    def x(self) -> str:
        return self.domains[0]

    @property
    def y(self) -> str:
        return self.domains[1]


_REGISTRY: dict[str, DomainPair] = {}


def register_pair(name: str, domains: tuple[str, str], amazon_categories: tuple[str, str], *,
                  overwrite: bool = False) -> DomainPair:
    """Add a domain pair; the two domain names must differ. Re-registering a name needs `overwrite=True`."""
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"domain pair {name!r} is already registered as {_REGISTRY[name]}; pass overwrite=True")
    if len(domains) != 2 or domains[0] == domains[1]:
        raise ValueError(f"a domain pair needs two different domain names, got {domains!r}")
    pair = DomainPair(name, tuple(domains), tuple(amazon_categories))
    _REGISTRY[name] = pair
    return pair


def get_pair(name: str) -> DomainPair:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown domain pair {name!r}; registered: {sorted(_REGISTRY)} "
                       f"(add one with llmemf_lite.register_pair)") from None


def registered_pairs() -> list[str]:
    return sorted(_REGISTRY)


register_pair("movie_book", ("movie", "book"), ("Movies_and_TV", "Books"))
register_pair("food_kitchen", ("food", "kitchen"), ("Grocery_and_Gourmet_Food", "Home_and_Kitchen"))
