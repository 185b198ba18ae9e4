"""The words the Lesson uses that a first-year student may not know, each with one plain
sentence.

:data:`TERMS` maps a term to its definition; :data:`ALIASES` maps the other ways the
Lesson writes a term (plurals, variants) to it. :func:`used_in` finds the terms a text
uses, so each step of the Lesson can list exactly the words it needs (the test scans the
rendered Lesson with its own list and checks every word it finds is defined here).

Example:
    >>> used_in("A lesion and two checkpoints, with TTA.")
    ['checkpoint', 'lesion', 'TTA']
"""

from __future__ import annotations

import re

TERMS: dict[str, str] = {
    "CNN": "A convolutional neural network: a program that learns to recognise pictures by sliding many small "
           "filters over the image, layer after layer.",
    "filter": "A small pattern detector (for example 3x3 pixels) that a CNN slides over the image; its output is "
              "high wherever the pattern appears.",
    "channel": "The output of one filter: a map of where its pattern appears. A layer with 16 filters gives 16 "
               "channels.",
    "layer": "One step of a CNN: a set of filters applied to the output of the step before.",
    "stage": "One of WSMS-Net's parallel copies of the network: stage 1 sees the full image, stage 2 the image at "
             "half size, stage 3 at a quarter size.",
    "parameters": "The numbers a network learns in training (mostly its filters); more parameters means a "
                  "bigger model.",
    "checkpoint": "A trained network saved to a file: its learned numbers plus a card that records how it was "
                  "trained and what it measured.",
    "validation images": "Labelled photos kept out of training and used only to measure how often a network is "
                         "right.",
    "top guess": "The class the network gives the highest probability to: its answer.",
    "zoom": "Here, 2x crops the middle half of the photo and enlarges it; 0.5x shrinks the photo to half size "
            "inside a grey frame.",
    "scale jitter": "Training on photos zoomed in or out at random, so the network sees objects at many sizes.",
    "correlation": "A number from -1 to 1 saying how much two maps rise and fall together: 1 means the same "
                   "pattern, 0 means unrelated.",
    "unit": "One number in a channel's map: how strongly the filter's pattern appears at one place.",
    "receptive field": "The patch of the input image that one unit of a layer can see; it grows with every layer.",
    "jump": "How many input pixels apart two neighbouring units of a layer look; it doubles each time the image "
            "is halved.",
    "logit": "The raw score a network gives each class before it is turned into a probability; the highest "
             "score is the top guess.",
    "attribution": "How much of one decision each part of the input (here: each stage) is responsible for.",
    "Integrated Gradients": "An attribution method: it fades the image in from grey step by step and adds up "
                            "how much each input changes the class score along the way.",
    "lesion": "Switching one part of a network off (here: one stage) to see how much the answer depended on it.",
    "95% interval": "The range in which the true difference lies with 95% confidence, given how many images "
                    "were measured; a wide range means a rough measurement.",
    "bootstrap": "A way to get the 95% interval: measure again on thousands of random re-draws of the same "
                 "validation images and see how much the result moves.",
    "seed": "The random number that sets a network's starting point and the order of its training photos; "
            "training again with another seed gives a slightly different network.",
    "seed spread": "How much accuracy changes between two trainings that differ only in their seed.",
    "resolved": "Said of a difference whose 95% interval does not include 0: the measurement shows which "
                "network is better, not just noise.",
    "interaction": "Whether one change (WSMS-Net) helps more, or less, when another change (scale jitter) is "
                   "also made.",
    "scale-channel network": "A network that runs one set of filters on copies of the image at several sizes and "
                             "keeps, at each place, the strongest answer; another design for scale.",
    "1x1 conv": "A filter one pixel wide: it only mixes the channels at each pixel; WSMS-Net uses one to join its "
                "stages.",
    "TTA": "Test-time augmentation: showing the network several zoomed copies of a photo and averaging its "
           "answers.",
    "pooled feature": "The list of numbers the network keeps about the whole image (each channel averaged over "
                      "the image) just before it scores the classes.",
}

ALIASES: dict[str, str] = {
    "CNNs": "CNN", "filters": "filter", "channels": "channel", "layers": "layer", "stages": "stage",
    "checkpoints": "checkpoint", "validation image": "validation images", "validation": "validation images",
    "top guesses": "top guess", "zoomed": "zoom", "zooms": "zoom", "receptive fields": "receptive field",
    "logits": "logit", "units": "unit", "attributions": "attribution", "lesions": "lesion", "95% CI": "95% interval",
    "interval": "95% interval", "intervals": "95% interval", "seeds": "seed",
    "seed-to-seed spread": "seed spread", "seed-aware": "seed spread", "unresolved": "resolved",
    "scale-channel": "scale-channel network", "1x1 convolution": "1x1 conv", "test-time augmentation": "TTA",
    "multi-scale averaging": "TTA", "correlated": "correlation", "parameter": "parameters",
}

# Written exactly so (an acronym); every other term is found whatever its case.
_EXACT = {"CNN", "CNNs", "TTA"}


def _pattern(word: str) -> re.Pattern:
    return re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])", 0 if word in _EXACT else re.IGNORECASE)


_PATTERNS = [(_pattern(w), w if w in TERMS else ALIASES[w]) for w in (*TERMS, *ALIASES)]


def term_of(word: str) -> str | None:
    """The glossary term ``word`` is (itself or an alias), or None.

    Example:
        >>> term_of("seed-to-seed spread"), term_of("Lesions"), term_of("banana")
        ('seed spread', 'lesion', None)
    """
    if word in TERMS:
        return word
    if word in ALIASES:
        return ALIASES[word]
    low = {k.lower(): k for k in (*TERMS, *ALIASES) if k not in _EXACT}
    key = low.get(word.lower())
    return None if key is None else ALIASES.get(key, key)


def define(word: str) -> str | None:
    """The one-sentence definition of ``word`` (a term or an alias), or None."""
    term = term_of(word)
    return TERMS[term] if term else None


def used_in(text: str) -> list[str]:
    """The terms ``text`` uses, in :data:`TERMS` order, each once."""
    found = {term for pattern, term in _PATTERNS if pattern.search(text)}
    return [t for t in TERMS if t in found]


def lines(terms) -> list[str]:
    """``term: definition`` for each term, as plain text (no markdown)."""
    return [f"{t}: {TERMS[t]}" for t in terms]


__all__ = ["ALIASES", "TERMS", "define", "lines", "term_of", "used_in"]
