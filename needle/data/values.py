"""Value pools for the offline generator: each draw is an (answer, surface) pair.

The answer is the JSON value a call holds; the surface is how the query says it. They are equal except
for documented normalisations: numbers may be written as words ("twenty five" -> 25), dates in many
formats become ISO `YYYY-MM-DD`, clock times ("7:30 pm", "noon") become 24-hour `HH:MM`.
Faker fills people, places, phones, e-mails... in 13 locales; pools are built once per process.
Open-ended strings (`word`, and half of songs, albums, products...) also come from an open vocabulary (Faker's
word lists in eight languages, its phrases): a small fixed pool lets the model recall values instead of
copying them from the request.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import re
from functools import lru_cache
from pathlib import Path

VALUES_FILE = Path(__file__).with_name("pools") / "values.json"
FAKER_FILE = Path(__file__).with_name("pools") / "faker_values.json.gz"
POOL_SIZE = 300  # values per locale and pool: enough variety, built in about a second
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_FAKER_POOLS = {
    "person": lambda f: f.name(), "first_name": lambda f: f.first_name(), "last_name": lambda f: f.last_name(),
    "city": lambda f: f.city(), "country": lambda f: f.country(), "street_address": lambda f: f.street_address(),
    "company": lambda f: f.company(), "phone": lambda f: f.phone_number(), "email": lambda f: f.email(),
    "url": lambda f: f.url() + f.uri_path() if f.random.random() < 0.5 else f.url(),
    "username": lambda f: f.user_name(),
}
# Open vocabulary: the word lists of these locales (others share a Latin placeholder list), and English phrases.
LEXICON_LOCALES = ("en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "ja_JP")
_PHRASES = (lambda f: f.catch_phrase(), lambda f: f.bs(), lambda f: f.job())
PHRASE_POOL_SIZE = 1500
# Where an open-ended value comes from: the fixed topical pool, one word of the lexicon, two or three of them,
# a Faker phrase (cumulative probabilities, tuned for variety, not measured).
OPEN_MIX = (0.35, 0.75, 0.9, 1.0)
_OPEN_TITLES = ("song", "album", "podcast")  # half of these are title-cased lexicon words
POOL_NAMES = frozenset(_FAKER_POOLS) | {"contact", "date", "time", "message", "long_text", "title", "product",
                                        "word", "filename",
                                        "song", "artist", "album", "podcast", "app", "language", "color",
                                        "currency"}
TIME_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9]$"


def number_words(n: int) -> str:
    """English words for 0 <= n < 1000, e.g. 25 -> 'twenty five', 120 -> 'one hundred twenty'."""
    if not 0 <= n < 1000:
        raise ValueError(f"number_words covers 0..999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))


def number_surface(rng: random.Random, value: int | float, words_p: float = 0.2) -> str:
    """Digits, or (for small whole numbers, with probability words_p) words."""
    if isinstance(value, int) and 0 <= value < 100 and rng.random() < words_p:
        text = number_words(value)
        return text.replace(" ", "-", 1) if 20 < value < 100 and value % 10 and rng.random() < 0.5 else text
    return str(value)


def _ordinal(d: int) -> str:
    suffix = "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suffix}"


def date_surface(rng: random.Random, day: dt.date) -> str:
    """One of many unambiguous spellings of a date (never 3/4/2027, which reads two ways)."""
    m, mon = day.strftime("%B"), day.strftime("%b")
    forms = (f"{m} {day.day}, {day.year}", f"{day.day} {m} {day.year}", f"{m} {_ordinal(day.day)} {day.year}",
             f"the {_ordinal(day.day)} of {m} {day.year}", f"{mon} {day.day} {day.year}", day.isoformat(),
             f"{day.strftime('%A')}, {m} {day.day}, {day.year}", f"{day.day} {mon} {day.year}")
    return rng.choice(forms)


def time_surface(rng: random.Random, hour: int, minute: int) -> str:
    """A clock time as people say it; the answer is always f'{hour:02d}:{minute:02d}'."""
    if (hour, minute) == (12, 0) and rng.random() < 0.5:
        return "noon"
    if (hour, minute) == (0, 0) and rng.random() < 0.5:
        return "midnight"
    h12, ampm = (hour % 12 or 12), ("am" if hour < 12 else "pm")
    ampm = rng.choice([ampm, ampm.upper(), ampm[0] + "." + ampm[1] + "."])
    forms = [f"{hour:02d}:{minute:02d}", f"{h12}:{minute:02d} {ampm}", f"{h12}:{minute:02d}{ampm}"]
    if minute == 0:
        forms += [f"{h12} {ampm}", f"{h12}{ampm}", f"{h12} o'clock" if hour in (9, 10, 11) else f"{h12} {ampm}"]
    return rng.choice(forms)


class ValuePools:
    """Sampled values by pool name; deterministic given the rng passed to `sample`."""

    def __init__(self, data: dict, faker_values: dict[str, list[str]], open_values: bool = True,
                 coined_p: float = 0.0):
        self.data, self.faker, self.open_values, self.coined_p = data, faker_values, open_values, coined_p

    def _text(self, rng: random.Random, template: str) -> str:
        fill = {"minutes": str(rng.randint(5, 45)), "product": rng.choice(self.data["product"]),
                "time": time_surface(rng, rng.randint(6, 22), rng.choice([0, 15, 30, 45])),
                "place": rng.choice(self.data["places"]), "first_name": rng.choice(self.faker["first_name"]),
                "last_name": rng.choice(self.faker["last_name"]), "day": rng.choice(self.data["days"]),
                "city": rng.choice(self.faker["city"]), "company": rng.choice(self.faker["company"]),
                "word": self.open_word(rng).capitalize(), "word2": self.open_word(rng),
                "n": str(rng.randint(1, 4)), "year": str(rng.randint(2025, 2029))}
        return template.format(**fill)

    def sample(self, rng: random.Random, name: str) -> tuple[object, str]:
        if name in ("date", "time"):
            return self._sample_moment(rng, name)
        if name == "contact":
            pool = rng.choice(["person", "first_name", "relation"])
            v = rng.choice(self.data["relations"] if pool == "relation" else self.faker[pool])
        elif name == "message":
            v = self._text(rng, rng.choice(self.data["message_templates"]))
        elif name == "title":
            v = self._text(rng, rng.choice(self.data["title_templates"]))
        elif name == "long_text":
            v = " ".join(rng.sample(self.data["long_text_sentences"], rng.randint(2, 5)))
        elif name == "word":
            v = self.open_word(rng)
        elif name == "filename":
            sep = rng.choice(["_", "-", " "])
            v = f"{self.open_word(rng, 2)}{sep}{rng.randint(1, 2030)}.{rng.choice(self.data['file_extensions'])}"
        elif name in _OPEN_TITLES and self._half_open(rng):
            v = " ".join(w.capitalize() for w in self._lexicon_words(rng, rng.randint(1, 3)))
        elif name in ("product", "app") and self._half_open(rng):
            v = self.open_word(rng, 2)
        elif name == "artist" and self._half_open(rng):
            v = rng.choice(self.faker["person"])
        elif name in self.faker:
            v = rng.choice(self.faker[name])
        elif name in self.data:
            v = rng.choice(self.data[name])
        else:
            raise KeyError(f"unknown value pool @{name}; known: {sorted(POOL_NAMES)}")
        return v, v

    def _half_open(self, rng: random.Random) -> bool:
        """With open values, a coin flip; without, False and no draw (the held-out splits' draws stay as made)."""
        return self.open_values and rng.random() < 0.5

    def _lexicon_words(self, rng: random.Random, n: int) -> list[str]:
        """n words of one language's list, English half the time."""
        locale = LEXICON_LOCALES[0] if rng.random() < 0.5 else rng.choice(LEXICON_LOCALES[1:])
        return [rng.choice(self.faker[f"lexicon_{locale}"]) for _ in range(n)]

    def open_word(self, rng: random.Random, max_kind: int = 3) -> str:
        """An open-ended value: a topical word, a lexicon word, two or three of them, or a phrase (kinds 0-3,
        at most `max_kind`)."""
        if not self.open_values:  # the held-out test splits were made this way (GenConfig.open_values)
            return rng.choice(self.data["words"])
        if self.coined_p and rng.random() < self.coined_p:  # no draw at 0: every earlier dataset stays as made
            return self.coined_value(rng)
        r = rng.random()
        kind = min(max_kind, next(i for i, p in enumerate(OPEN_MIX) if r < p))
        if kind == 0:
            return rng.choice(self.data["words"])
        if kind == 3:
            return rng.choice(self.faker["phrase"])
        return " ".join(self._lexicon_words(rng, 1 if kind == 1 else rng.randint(2, 3)))

    def coined_word(self, rng: random.Random) -> str:
        """A word no list holds, glued from slices of two or three lexicon words ("Yellowstone"-like: "Brandomel").
        Its BPE pieces are rare, and the piece that starts it in a request (after a space) differs from the one
        that starts it as a JSON value (after a quote), so the model must copy it rather than recall it."""
        parts = []
        for w in self._lexicon_words(rng, rng.randint(2, 3)):
            i = rng.randint(0, max(0, len(w) - 2))
            parts.append(w[i:rng.randint(min(len(w), i + 2), len(w))])
        word = "".join(parts).lower()
        return word.capitalize() if rng.random() < 0.5 else word

    def coined_value(self, rng: random.Random) -> str:
        """One or two coined words, or a coined word beside a lexicon word ("Brandomel National")."""
        words = [self.coined_word(rng) for _ in range(rng.choice((1, 1, 2)))]
        if rng.random() < 0.3:
            words.insert(rng.randint(0, len(words)), self._lexicon_words(rng, 1)[0])
        return " ".join(words)

    def _sample_moment(self, rng: random.Random, name: str) -> tuple[str, str]:
        if name == "date":
            day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 3 * 365))
            return day.isoformat(), date_surface(rng, day)
        hour, minute = rng.randint(0, 23), rng.choice([0, 0, 5, 10, 15, 20, 30, 30, 40, 45, 50])
        return f"{hour:02d}:{minute:02d}", time_surface(rng, hour, minute)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\n", ", ")).strip()


def build_faker_values(data: dict) -> dict[str, list[str]]:
    """Draw the Faker pools (scripts/build_value_pools.py stores them in FAKER_FILE).

    NOTE: some Faker providers depend on Python's per-process string hashing, so two processes with the
    same seed can draw different values; that is why the generator reads the stored file instead."""
    from faker import Faker  # heavy import, only when rebuilding
    out: dict[str, list[str]] = {k: [] for k in _FAKER_POOLS}
    for i, locale in enumerate(data["locales"]):
        fake = Faker(locale)
        fake.seed_instance(i)
        for key, make in _FAKER_POOLS.items():
            out[key] += [_clean(make(fake)) for _ in range(POOL_SIZE // 4 if key == "country" else POOL_SIZE)]
    for locale in LEXICON_LOCALES:
        out[f"lexicon_{locale}"] = [w for w in Faker(locale).get_words_list() if len(w) >= 3 and " " not in w]
    fake = Faker("en_US")
    fake.seed_instance(0)
    out["phrase"] = [_clean(_PHRASES[i % len(_PHRASES)](fake)) for i in range(PHRASE_POOL_SIZE)]
    return {k: sorted(set(v)) for k, v in out.items()}


@lru_cache(maxsize=1)
def _read_pools() -> tuple[dict, dict[str, list[str]]]:
    """VALUES_FILE and FAKER_FILE, read once per process: identical in every process and on every machine."""
    data = json.loads(VALUES_FILE.read_text(encoding="utf-8"))
    with gzip.open(FAKER_FILE, "rt", encoding="utf-8") as f:
        return data, json.load(f)


@lru_cache(maxsize=4)
def load_pools(open_values: bool = True, coined_p: float = 0.0) -> ValuePools:
    """The pools for these settings; every setting shares one read of the files."""
    return ValuePools(*_read_pools(), open_values, coined_p)
