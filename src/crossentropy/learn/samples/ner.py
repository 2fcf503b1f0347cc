"""Sample data: synthetic named-entity sentences from templates, in CoNLL-2003's IOB2 tags (PER, LOC, ORG, MISC),
for examples (the README's), tests and quick checks of a tagger. Public and deterministic for a given ``seed``;
``names="train"`` / ``"test"`` split the entity names so that a tagger can be tested on names it never saw.
``crossentropy.learn.io.conll.write_conll(path, generate(300))`` writes a CoNLL file of them.
"""

from __future__ import annotations

import numpy as np

from ...rules.errors import InputValueError

NAMES = {
    "PER": ["Peter Blackburn", "Angela Merkel", "Ada Lovelace", "Werner Zwingmann", "Nikolaus van der Pas", "Alan",
            "Maria Silva", "Kenji Watanabe", "Fatima Zahra", "John Smith", "Grace Hopper", "Ivan Petrov",
            "Chen Wei", "Sophie Dubois", "Carlos", "Amara Okafor", "Olivia", "Lars Eriksson", "Priya Patel",
            "Tom Baker", "Hans Gruber", "Elena Rossi", "Mohamed Ali", "Yuki Tanaka", "Pablo Neruda", "Anna Karenina",
            "David Cohen", "Lucy Gray", "Omar Haddad", "Kate Bush"],
    "LOC": ["Germany", "Britain", "Brussels", "New York", "Lake Geneva", "Tokyo", "Nairobi", "Lima", "Alps",
            "Sao Paulo", "Cairo", "Oslo", "Sydney", "Mount Kenya", "Paris", "Rhine Valley", "Canada", "Madrid",
            "Hong Kong", "Berlin", "Mexico", "Buenos Aires", "Vienna", "Seoul", "Kenya", "Lisbon", "Cape Town",
            "Chicago", "Dublin", "Peru"],
    "ORG": ["European Commission", "EU", "Reuters", "United Nations", "Acme Corp", "FC Barcelona", "NASA",
            "Siemens", "Bank of Japan", "Red Cross", "Toyota", "World Health Organization", "Apple", "BBC",
            "Bank of England", "General Motors", "Real Madrid", "IBM", "Deutsche Bank", "UNICEF", "Nestle",
            "World Bank", "Ajax Amsterdam", "Microsoft", "Interpol", "Volkswagen", "Airbus", "Sony",
            "Bayern Munich", "OPEC"],
    "MISC": ["German", "British", "Olympic Games", "Euro", "Japanese", "World Cup", "Nobel Prize", "French",
             "Tour de France", "Christmas", "Brazilian", "Ramadan", "Italian", "Wimbledon", "Grammy Awards",
             "Spanish", "Easter", "Davis Cup", "Chinese", "Oscar", "Dutch", "Super Bowl", "Kenyan", "Champions League"],
}

# the third of each name list held out for names="test": fixed, drawn once at random
TEST_NAMES = {kind: set(np.random.default_rng(17).permutation(len(pool))[:len(pool) // 3].tolist())
              for kind, pool in NAMES.items()}

TEMPLATES = [
    "{PER} flew to {LOC} on Monday .",
    "{ORG} rejects {MISC} call to boycott {MISC} lamb .",
    "{PER} , a spokesman for {ORG} , said the talks in {LOC} went well .",
    "The {MISC} team won the {MISC} in {LOC} .",
    "{PER} met {PER} at the headquarters of {ORG} .",
    "Shares of {ORG} fell 3 percent in {LOC} trading .",
    "{ORG} opened a new office in {LOC} last year .",
    "{PER} told {ORG} that prices would rise .",
    "Officials in {LOC} welcomed the {MISC} delegation .",
    "{PER} will visit {LOC} and {LOC} next week .",
    "The report by {ORG} was published on Tuesday .",
    "Fans celebrated {MISC} in the streets of {LOC} .",
    "{PER} joined {ORG} after ten years at {ORG} .",
    "Rain is expected across {LOC} over the weekend .",
    "{ORG} and {ORG} signed a trade agreement .",
    "{PER} said the {MISC} economy was growing .",
    "Police in {LOC} arrested two men on Friday .",
    "{PER} wrote a book about {LOC} .",
    "The {MISC} minister arrived in {LOC} .",
    "{ORG} hired {PER} as chief executive .",
    "Thousands watched the {MISC} in {LOC} .",
    "{PER} thanked the staff of {ORG} in {LOC} .",
    "Exports from {LOC} rose sharply in May .",
    "{PER} lost to {PER} in the final .",
    "It was a quiet day for {ORG} .",
    "Nothing happened in the market today .",
    "{PER} said : \" We are ready . \"",
    "{ORG} expects profits to double , {PER} said .",
]


def generate(n_sentences: int, *, seed: int = 0, names: str = "all") -> list[list[tuple[str, str]]]:
    """``n_sentences`` sentences of ``(token, tag)`` rows, each a random template with random entity names.

    ``names="train"`` draws from two thirds of each name list and ``names="test"`` from the other third (a fixed
    random third), so that a tagger can be tested on names it never saw; ``"all"`` draws from every name.

    >>> generate(1, seed=3)[0][:3]
    [('Exports', 'O'), ('from', 'O'), ('Brussels', 'B-LOC')]
    """
    if names not in ("all", "train", "test"):
        raise InputValueError(f"names must be 'all', 'train' or 'test', but got {names!r}.")
    pools = {kind: [name for i, name in enumerate(pool)
                    if names == "all" or (i in TEST_NAMES[kind]) == (names == "test")] for kind, pool in NAMES.items()}
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n_sentences):
        template = TEMPLATES[rng.integers(len(TEMPLATES))]
        rows = []
        for word in template.split():
            kind = word[1:-1] if word.startswith("{") and word.endswith("}") else None
            if kind is None:
                rows.append((word, "O"))
                continue
            name = pools[kind][rng.integers(len(pools[kind]))]
            tokens = name.split()
            rows += [(token, f"{'B' if i == 0 else 'I'}-{kind}") for i, token in enumerate(tokens)]
        sentences.append(rows)
    return sentences
