"""Prompt templates for LLM text enrichment, as data: a name, a version, a system line and a user line.

What this file is: the small set of templates (`TEMPLATES`), how one is filled in for an item (`PromptTemplate.render`)
and the template's hash, which is recorded with every generated text and is part of the cache key, so that editing
a template regenerates exactly what it changed. What it is not: any model call (see `local.py`, `http.py`) or the
cache (`cache.py`).

The paper (LLM-EMF) prompts DeepSeek-R1 with an item's title and domain and asks for key terms, a summary and likely
user interests; its exact prompt is not published. The templates below ask for one of those three each, in one short
sentence, because a 135M-parameter model on a 2-core CPU has to write 2,400 of them in a few minutes, and because the
text is later read by CLIP's text encoder, which sees at most 77 tokens.

A template may use {title}, {domain} (the pair's short domain name, e.g. "food", "kitchen": the Amazon category
name "home and kitchen" made SmolLM2 describe houses) and {description}
(the item's description; empty unless `EnrichConfig.use_description`). Changing any text of a template without
raising its version is caught by the hash anyway: the version is for people, the hash is for the cache.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    system: str     # kept short: every token of it is re-read for every item (prefill cost on a CPU)
    user: str       # str.format template over {title}, {domain}, {description}

    @property
    def hash(self) -> str:
        """12 hex digits of SHA-256 over the template's fields: the prompt part of the cache key."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def render(self, title: str, domain: str, description: str = "") -> list[dict]:
        """The chat messages for one item (OpenAI / transformers chat format)."""
        fields = {"title": title.strip(), "domain": domain, "description": (description or "").strip()}
        user = self.user.format(**fields)
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return messages + [{"role": "user", "content": user}]


TEMPLATES: dict[str, PromptTemplate] = {t.name: t for t in (
    # A summary: what the item is and what it is for. The default: a small model writes fluent, on-topic text here.
    PromptTemplate("describe", 1, "You write short product descriptions.",
                   "Describe this {domain} product in one short sentence: {title}"),
    # Key terms: attributes a shopper would search for.
    PromptTemplate("attributes", 1, "You write short product descriptions.",
                   "Name the main features of this {domain} product in one short sentence: {title}"),
    # Likely user interests: who buys it and why (the paper's "user interests").
    PromptTemplate("audience", 1, "You write short product descriptions.",
                   "In one short sentence, say who would buy this {domain} product and why: {title}"),
    # The same with the item's description as context, for real data that has one (`use_description=True`).
    PromptTemplate("describe_with_context", 1, "You write short product descriptions.",
                   "Describe this {domain} product in one short sentence: {title}\nDetails: {description}"),
)}


def get_template(name: str) -> PromptTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise KeyError(f"unknown prompt template {name!r}; have {sorted(TEMPLATES)} "
                       f"(llmemf_lite/enrich/prompts.py)") from None


def messages_text(messages: list[dict]) -> str:
    """The rendered prompt as one string, as recorded in the cache beside each output."""
    return "\n".join(f"[{m['role']}] {m['content']}" for m in messages)
