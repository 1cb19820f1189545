"""Quality guards: decide whether a generated text is usable, and trim what can be saved.

What this file is: `check_generation`, which takes a backend's raw output and returns either a cleaned text or the
reason it is unusable (then the item falls back to its original title, and the reason is counted). What it is not:
any model call or any judgement of whether the text is *true* (a small model invents flavours; the guards only
catch output that is not text about the item at all).

Reasons, checked in this order:
    backend error       the backend reported a per-item problem (e.g. an HTTP response with no choices)
    chat markup         role markers or special tokens in the text (<|im_start|>, [INST], "assistant:", ...): the
                        model is writing the next chat turn, not a description
    empty               nothing but whitespace
    truncated to nothing  cut at max_new_tokens, and less than `min_words` words remain once the unfinished tail is
                        dropped
    too short           fewer than `min_words` words
    repetition          a loop: few distinct word 3-grams, or one word/character run repeated
    prompt echo         the text repeats the instruction, or is only the title again
    not prose           mostly digits, symbols or list markers
A text cut at max_new_tokens is trimmed to its last complete sentence when one with at least `min_words` words
exists, else to its last whole word; it is kept (and counted as `trimmed`, not as a fallback).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

CHAT_MARKUP = re.compile(r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|</?s>|^\s*(assistant|user|system)\s*:|"
                         r"<start_of_turn>|<end_of_turn>|<think>|</think>", re.IGNORECASE | re.MULTILINE)
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
WORD = re.compile(r"[A-Za-z0-9']+")
# words that cannot end a trimmed text: articles, prepositions, conjunctions
DANGLING = {"a", "an", "the", "of", "with", "and", "or", "to", "for", "that", "in", "on", "by", "from", "as", "its",
            "their", "your", "is", "are", "which", "while", "at", "into", ""}


@dataclass(frozen=True)
class GuardConfig:
    min_words: int = 4              # fewer words say nothing a title does not
    min_distinct_trigrams: float = 0.5  # share of distinct word 3-grams below which a text is a loop
    max_word_run: int = 3           # the same word this many times in a row (or more) is a loop
    echo_words: int = 6             # this many consecutive instruction words in the output is an echo
    min_letter_share: float = 0.6   # letters among non-space characters


@dataclass(frozen=True)
class GuardResult:
    text: str | None        # the cleaned text, or None when the item must fall back
    reason: str | None      # why it falls back (None when usable)
    trimmed: bool = False   # the text was cut at max_new_tokens and trimmed to a whole sentence or word


def _words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def _trim_unfinished(text: str, min_words: int) -> str:
    """Drop the unfinished tail of a text cut at max_new_tokens: back to the last sentence end if that keeps
    enough words, else back to the last whole word."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    if ends and len(_words(text[:ends[-1]])) >= min_words:
        return text[:ends[-1]].strip()
    words = text.split()[:-1]  # the last word may be cut mid-way
    while words and words[-1].lower().strip(",;:-(") in DANGLING:  # "... made with a" -> "... made"
        words.pop()
    return " ".join(words).rstrip(" ,;:-(").strip()


def _is_loop(words: list[str], text: str, cfg: GuardConfig) -> bool:
    run = 1
    for a, b in zip(words, words[1:]):
        run = run + 1 if a == b else 1
        if run >= cfg.max_word_run:
            return True
    trigrams = list(zip(words, words[1:], words[2:]))
    if len(trigrams) >= 6 and len(set(trigrams)) / len(trigrams) < cfg.min_distinct_trigrams:
        return True
    return re.search(r"(.{2,}?)\1{4,}", text) is not None  # a short substring five times in a row ("!!!!!", "abab")


def _is_echo(words: list[str], title: str, instruction: str, cfg: GuardConfig) -> bool:
    if words == _words(title):
        return True
    text, n = " " + " ".join(words) + " ", cfg.echo_words
    # the instruction holds the title, and repeating the title is fine: look for runs of the instruction's own words
    for segment in (instruction.split(title) if title else [instruction]):
        instr = _words(segment)
        if any(" " + " ".join(instr[i:i + n]) + " " in text for i in range(len(instr) - n + 1)):
            return True
    return False


def check_generation(text: str, *, title: str, instruction: str = "", finished: bool = True,
                     error: str | None = None, config: GuardConfig | None = None) -> GuardResult:
    """Check one generation. `instruction` is the prompt's user text (for echo detection); `finished` is False
    when the backend stopped at max_new_tokens."""
    cfg = config or GuardConfig()
    if error:
        return GuardResult(None, f"backend error: {error}")
    if CHAT_MARKUP.search(text or ""):
        return GuardResult(None, "chat markup")
    text = " ".join((text or "").split())  # one line: newlines and runs of spaces say nothing to CLIP
    if not text:
        return GuardResult(None, "empty")
    trimmed = False
    if not finished:
        text, trimmed = _trim_unfinished(text, cfg.min_words), True
        if len(_words(text)) < cfg.min_words:
            return GuardResult(None, "truncated to nothing")
    words = _words(text)
    if len(words) < cfg.min_words:
        return GuardResult(None, "too short")
    if _is_loop(words, text, cfg):
        return GuardResult(None, "repetition")
    if _is_echo(words, title, instruction, cfg):
        return GuardResult(None, "prompt echo")
    visible = [c for c in text if not c.isspace()]
    if sum(c.isalpha() for c in visible) < cfg.min_letter_share * len(visible):
        return GuardResult(None, "not prose")
    return GuardResult(text, None, trimmed)
