"""Surface noise on query segments: politeness, fillers, typos, speech-recognition errors, casing.

Only text segments change; value segments ([text, True]) stay exactly as the answer copies them.
"""
from __future__ import annotations

import random
import re

_KEYS = "qwertyuiop asdfghjkl zxcvbnm".split()
_WORD = re.compile(r"[A-Za-z']+")


def typo(rng: random.Random, word: str) -> str:
    """One keyboard slip: swapped, dropped, doubled or neighbouring letter."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == 1:
        return word[:i] + word[i + 1:]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    row = next((r for r in _KEYS if word[i].lower() in r), None)
    if row is None:
        return word
    j = row.index(word[i].lower())
    return word[:i] + row[max(0, min(len(row) - 1, j + rng.choice([-1, 1])))] + word[i + 1:]


def _map_text(segs: list, fn) -> list:
    return [[s, v] if v else [fn(s), v] for s, v in segs]


def garble(rng: random.Random, segs: list, asr_swaps: dict) -> list:
    """Typos (p 0.15 per word) and, half the time, speech-recognition style: homophones, no case/punct."""
    asr = rng.random() < 0.5

    def word(m: re.Match) -> str:
        w = m.group(0)
        if asr and w.lower() in asr_swaps and rng.random() < 0.6:
            return asr_swaps[w.lower()]
        return typo(rng, w) if rng.random() < 0.15 else w

    segs = _map_text(segs, lambda s: _WORD.sub(word, s))
    if asr:
        segs = _map_text(segs, lambda s: re.sub(r"[?!.;:]", "", s.lower()))
    return segs


def add_fillers(rng: random.Random, segs: list, fillers: list[str]) -> list:
    """Insert one or two fillers ("um", "you know") at word boundaries, sometimes a stutter."""
    out = [list(s) for s in segs]
    for _ in range(rng.randint(1, 2)):
        texts = [i for i, (s, v) in enumerate(out) if not v and " " in s]
        if not texts:
            break
        i = rng.choice(texts)
        spaces = [m.start() for m in re.finditer(" ", out[i][0])]
        at = rng.choice(spaces)
        filler = rng.choice(fillers)
        insert = rng.choice([f" {filler},", f", {filler},", f" {filler}...", f" {filler}"])
        out[i][0] = out[i][0][:at] + insert + out[i][0][at:]
    if rng.random() < 0.3 and out and not out[0][1]:
        first = out[0][0].split(" ", 1)[0]
        if first.isalpha():
            out[0][0] = f"{first}... {out[0][0]}"
    return out


def dress(rng: random.Random, segs: list, d: dict) -> list:
    """Politeness prefix/suffix, capitalisation and end punctuation, each at random."""
    segs = [list(s) for s in segs]
    if rng.random() < 0.25:
        segs.insert(0, [rng.choice(d["prefixes"]), False])
    if rng.random() < 0.2:
        segs.append([rng.choice(d["suffixes"]), False])
    first = next((s for s in segs if s[0]), None)
    if first and not first[1] and rng.random() < 0.7:
        first[0] = first[0][0].upper() + first[0][1:]
    last = segs[-1]
    if not last[1] and not last[0].rstrip().endswith(("?", "!", ".")) and rng.random() < 0.4:
        last[0] = last[0].rstrip() + rng.choice([".", "!", "."])
    return segs


def render(segs: list) -> str:
    """Join segments and tidy spaces (never inside a value)."""
    text = "".join(s for s, _ in segs)
    return re.sub(r"\s+", " ", text).strip()
