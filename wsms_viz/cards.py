"""The checkpoint card (``card.json``): one typed record, one reader, one writer.

A card is everything a checkpoint knows besides its weights: the registry name and
config that rebuild the model, the class names, the normalisation, the training log,
the trainer's metrics and the evaluator's scale-robustness curve. :func:`parse_card`
checks every field the app and the evaluator read (types, ranges, lengths) and turns
the JSON into a :class:`Card`; :meth:`Card.to_dict` turns it back. Blocks this module
does not know (a study's ``scale_study``, a recipe's fields, versions, hardware) are
kept as they were, so a read and a write change nothing they hold.

Versions (``card_version``): 1, the cards written before this module (no such field,
no run id); 2, the same fields plus ``card_version`` and, from the evaluator, a
``run_id`` in ``scale_robustness``. Both load.

Derived figures are defined here once: accuracy at a zoom (:meth:`ZoomCurve.at_zoom`),
the mean over the sweep (:attr:`ZoomCurve.mean_acc`), epochs trained
(:func:`epochs_trained`).

Example:
    >>> raw = {"model": "resnet20", "config": {"num_classes": 2}, "classes": ["a", "b"], "sha256": "0" * 64,
    ...        "scale_robustness": {"zooms": [0.5, 1.0], "val_acc": [0.25, 0.75]}, "scale_study": {"x": [1]}}
    >>> card = parse_card(raw)
    >>> card.scale_robustness.at_zoom(1.0), card.scale_robustness.mean_acc, card.epochs_trained
    (0.75, 0.5, 0)
    >>> card.to_dict()["scale_study"]
    {'x': [1]}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

CARD_VERSION = 2
FORMAT_VERSION = 1  # of the weights file's layout (safetensors, shared tensors once)
MAX_CARD_BYTES = 16 * 2**20  # a card is kilobytes; a bigger file is not one
MAX_DEPTH = 32  # the deepest real card nests 5 levels
MAX_CLASSES = 100_000
MAX_INT_CONFIG = 100_000  # any integer in a model config (depth, channels, classes)
ZOOM_RANGE = (0.25, 8.0)  # wsms_viz.zoom's MIN_ZOOM, MAX_ZOOM (checked equal in tests)


class CheckpointError(Exception):
    """A checkpoint (directory, card or weights) that cannot be used; the message says
    which file and which field, and why."""


# --- checks --------------------------------------------------------------------------

def _fail(where: str, field_name: str, why: str):
    raise CheckpointError(f"{where}: card field {field_name!r} {why}")


def _number(v: Any, where: str, name: str, lo: float = -math.inf, hi: float = math.inf,
            lo_open: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        _fail(where, name, f"must be a finite number, got {v!r}")
    if v < lo or v > hi or (lo_open and v == lo):
        _fail(where, name, f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _opt_number(v, where, name, lo=-math.inf, hi=math.inf) -> float | None:
    return None if v is None else _number(v, where, name, lo, hi)


def _int(v: Any, where: str, name: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        _fail(where, name, f"must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _str(v: Any, where: str, name: str, max_len: int = 1000) -> str:
    if not isinstance(v, str) or not v or len(v) > max_len:
        _fail(where, name, f"must be a non-empty string of at most {max_len} characters, got {v!r:.80}")
    return v


def _obj(v: Any, where: str, name: str) -> dict:
    if not isinstance(v, dict):
        _fail(where, name, f"must be an object, got {type(v).__name__}")
    return v


def _list(v: Any, where: str, name: str, n: int | None = None, min_len: int = 0) -> list:
    if not isinstance(v, list):
        _fail(where, name, f"must be a list, got {type(v).__name__}")
    if n is not None and len(v) != n:
        _fail(where, name, f"must have {n} entries, got {len(v)}")
    if len(v) < min_len:
        _fail(where, name, f"must have at least {min_len} entries")
    return v


def _pair(v, where, name, lo=-math.inf, hi=math.inf) -> tuple[float, float]:
    a, b = (_number(x, where, f"{name}[{i}]", lo, hi) for i, x in enumerate(_list(v, where, name, 2)))
    if a > b:
        _fail(where, name, f"must be [lo, hi] with lo <= hi, got {v!r}")
    return a, b


def _extra(raw: dict, known) -> dict:
    return {k: v for k, v in raw.items() if k not in known}


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


# --- blocks ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and std the model's inputs were normalised with (RGB, in [0, 1] units)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def parse(cls, raw, where: str) -> Normalization:
        raw = _obj(raw, where, "normalization")
        mean = tuple(_number(v, where, f"normalization.mean[{i}]", 0, 1)
                     for i, v in enumerate(_list(raw.get("mean"), where, "normalization.mean", 3)))
        std = tuple(_number(v, where, f"normalization.std[{i}]", 0, 10, lo_open=True)
                    for i, v in enumerate(_list(raw.get("std"), where, "normalization.std", 3)))
        return cls(mean, std)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}


@dataclass(frozen=True)
class Difference:
    """A difference of accuracies from the baseline: value, bootstrap 95% interval, that
    interval widened by the seed-to-seed spread, and the verdict."""

    diff: float
    ci: tuple[float, float]
    seed_aware_ci: tuple[float, float]
    resolved: str

    @classmethod
    def parse(cls, raw, where: str, name: str) -> Difference:
        raw = _obj(raw, where, name)
        return cls(_number(raw.get("diff"), where, f"{name}.diff", -1, 1), _pair(raw.get("ci"), where, f"{name}.ci"),
                   _pair(raw.get("seed_aware_ci"), where, f"{name}.seed_aware_ci"),
                   _str(raw.get("resolved"), where, f"{name}.resolved", 100))

    def to_dict(self) -> dict:
        return {"diff": self.diff, "ci": list(self.ci), "seed_aware_ci": list(self.seed_aware_ci),
                "resolved": self.resolved}


@dataclass(frozen=True)
class Comparison:
    """``vs_baseline``: this curve against the evaluator's baseline."""

    baseline: str
    at_zoom_1: Difference | None = None
    mean: Difference | None = None

    @classmethod
    def parse(cls, raw, where: str, name: str) -> Comparison:
        raw = _obj(raw, where, name)
        diffs = {k: Difference.parse(raw[k], where, f"{name}.{k}") if raw.get(k) is not None else None
                 for k in ("at_zoom_1", "mean")}
        return cls(_str(raw.get("baseline"), where, f"{name}.baseline"), **diffs)

    def to_dict(self) -> dict:
        return _drop_none({"baseline": self.baseline, "at_zoom_1": self.at_zoom_1 and self.at_zoom_1.to_dict(),
                           "mean": self.mean and self.mean.to_dict()})


@dataclass(frozen=True)
class ZoomCurve:
    """Val accuracy at each zoom factor, with optional 95% intervals and comparison."""

    zooms: tuple[float, ...]
    val_acc: tuple[float, ...]
    val_acc_ci: tuple[tuple[float, float], ...] | None = None
    mean_acc_ci: tuple[float, float] | None = None
    vs_baseline: Comparison | None = None
    extra: dict = field(default_factory=dict)
    stored_mean_acc: float | None = field(default=None, repr=False)  # as written, kept for an exact round trip

    _KNOWN = ("zooms", "val_acc", "mean_acc", "val_acc_ci", "mean_acc_ci", "vs_baseline")

    @property
    def mean_acc(self) -> float:
        """The mean accuracy over the sweep (every zoom weighs the same)."""
        computed = sum(self.val_acc) / len(self.val_acc)
        return self.stored_mean_acc if self.stored_mean_acc is not None else computed

    def at_zoom(self, zoom: float) -> float | None:
        """Accuracy at ``zoom`` (to 1e-6), or None if the sweep did not include it."""
        return next((a for z, a in zip(self.zooms, self.val_acc, strict=True) if abs(z - zoom) < 1e-6), None)

    @property
    def at_zoom_1(self) -> float | None:
        return self.at_zoom(1.0)

    @classmethod
    def _fields(cls, raw: dict, where: str, name: str, zooms: tuple[float, ...] | None = None) -> dict:
        if zooms is None:
            zooms = tuple(_number(z, where, f"{name}.zooms[{i}]", *ZOOM_RANGE)
                          for i, z in enumerate(_list(raw.get("zooms"), where, f"{name}.zooms", min_len=1)))
            if len(set(zooms)) != len(zooms):
                _fail(where, f"{name}.zooms", f"has repeated factors: {list(zooms)}")
        acc = tuple(_number(a, where, f"{name}.val_acc[{i}]", 0, 1)
                    for i, a in enumerate(_list(raw.get("val_acc"), where, f"{name}.val_acc", len(zooms))))
        mean = _opt_number(raw.get("mean_acc"), where, f"{name}.mean_acc", 0, 1)
        if mean is not None and abs(mean - sum(acc) / len(acc)) > 1e-9:
            _fail(where, f"{name}.mean_acc", f"is {mean}, but the mean of val_acc is {sum(acc) / len(acc)}")
        ci = raw.get("val_acc_ci")
        if ci is not None:
            ci = tuple(_pair(c, where, f"{name}.val_acc_ci[{i}]", 0, 1)
                       for i, c in enumerate(_list(ci, where, f"{name}.val_acc_ci", len(zooms))))
        mci = raw.get("mean_acc_ci")
        vs = raw.get("vs_baseline")
        return {"zooms": zooms, "val_acc": acc, "val_acc_ci": ci, "stored_mean_acc": mean,
                "mean_acc_ci": None if mci is None else _pair(mci, where, f"{name}.mean_acc_ci", 0, 1),
                "vs_baseline": None if vs is None else Comparison.parse(vs, where, f"{name}.vs_baseline")}

    def _known_dict(self) -> dict:
        return _drop_none({
            "zooms": list(self.zooms), "val_acc": list(self.val_acc), "mean_acc": self.mean_acc,
            "val_acc_ci": [list(c) for c in self.val_acc_ci] if self.val_acc_ci is not None else None,
            "mean_acc_ci": list(self.mean_acc_ci) if self.mean_acc_ci is not None else None,
            "vs_baseline": self.vs_baseline.to_dict() if self.vs_baseline else None})


@dataclass(frozen=True)
class TTACurve(ZoomCurve):
    """The multi-scale test-time averaging curve, at the same zooms as its model's."""

    scales: tuple[float, ...] = ()

    @classmethod
    def parse(cls, raw, where: str, zooms: tuple[float, ...]) -> TTACurve:
        raw = _obj(raw, where, "scale_robustness.tta")
        scales = tuple(_number(s, where, f"scale_robustness.tta.scales[{i}]", 0, 100, lo_open=True)
                       for i, s in enumerate(_list(raw.get("scales", []), where, "scale_robustness.tta.scales")))
        return cls(**cls._fields(raw, where, "scale_robustness.tta", zooms), scales=scales,
                   extra=_extra(raw, cls._KNOWN + ("scales",)))

    def to_dict(self) -> dict:
        out = self._known_dict()
        out.pop("zooms")
        return {**({"scales": list(self.scales)} if self.scales else {}), **out, **self.extra}


@dataclass(frozen=True)
class ScaleRobustness(ZoomCurve):
    """``card["scale_robustness"]``: the model's curve, its TTA curve, and the id of the
    evaluator run that wrote it (cards of one run compare with each other only)."""

    tta: TTACurve | None = None
    run_id: str | None = None

    @classmethod
    def parse(cls, raw, where: str) -> ScaleRobustness:
        raw = _obj(raw, where, "scale_robustness")
        f = cls._fields(raw, where, "scale_robustness")
        tta = raw.get("tta")
        run_id = raw.get("run_id")
        return cls(**f, tta=None if tta is None else TTACurve.parse(tta, where, f["zooms"]),
                   run_id=None if run_id is None else _str(run_id, where, "scale_robustness.run_id", 100),
                   extra=_extra(raw, cls._KNOWN + ("tta", "run_id")))

    def to_dict(self) -> dict:
        return {**self._known_dict(), **self.extra,
                **_drop_none({"tta": self.tta.to_dict() if self.tta else None, "run_id": self.run_id})}


@dataclass(frozen=True)
class LogRow:
    """One epoch of the trainer's log."""

    epoch: int
    values: dict  # lr, train_loss, train_acc, val_loss, val_acc, images_per_s, time_s: finite numbers

    @classmethod
    def parse(cls, raw, where: str, i: int) -> LogRow:
        name = f"log[{i}]"
        raw = _obj(raw, where, name)
        epoch = _int(raw.get("epoch"), where, f"{name}.epoch", 1, 10**6)
        for k, v in raw.items():
            if k != "epoch" and v is not None:
                _number(v, where, f"{name}.{k}")
        return cls(epoch, {k: v for k, v in raw.items() if k != "epoch"})

    def get(self, key: str, default=None):
        return self.epoch if key == "epoch" else self.values.get(key, default)

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, **self.values}


# --- the card ----------------------------------------------------------------------------

_TYPED = ("card_version", "format_version", "name", "model", "config", "classes", "sha256", "normalization",
          "input_size", "log", "metrics", "scale_robustness")


@dataclass(frozen=True, eq=False)
class Card(Mapping):
    """A validated checkpoint card.

    Typed attributes for what the code reads; ``extra`` holds every other top-level
    block as it was read (``data``, ``recipe``, ``versions``, ``scale_study`` ...). The
    card is also a read-only mapping of its JSON form (``card["classes"]``), so code
    that only displays fields needs no change.
    """

    model: str
    config: dict
    classes: tuple[str, ...]
    sha256: str
    name: str | None = None
    normalization: Normalization | None = None
    input_size: tuple[int, int] | None = None
    log: tuple[LogRow, ...] = ()
    metrics: dict = field(default_factory=dict)
    scale_robustness: ScaleRobustness | None = None
    format_version: int = FORMAT_VERSION
    card_version: int = CARD_VERSION
    extra: dict = field(default_factory=dict)

    @property
    def epochs_trained(self) -> int:
        """The last epoch the log records (0: no log, an untrained or hand-made card)."""
        return max((r.epoch for r in self.log), default=0)

    @property
    def recipe(self) -> dict:
        return self.extra.get("recipe") if isinstance(self.extra.get("recipe"), dict) else {}

    @property
    def scale_jitter(self) -> tuple[float, float] | None:
        j = self.recipe.get("scale_jitter")
        return tuple(j) if j else None

    @property
    def data_source(self) -> str | None:
        d = self.extra.get("data")
        return d.get("source") if isinstance(d, dict) else None

    def replace(self, **changes) -> Card:
        """A copy with typed fields changed (``card.replace(scale_robustness=sr)``)."""
        return replace(self, **changes)

    def with_block(self, key: str, value) -> Card:
        """A copy with the untyped top-level block ``key`` set (e.g. a study's
        ``scale_study``); a typed field goes through :meth:`replace` instead."""
        if key in _TYPED:
            raise ValueError(f"{key!r} is a typed field: use card.replace({key}=...)")
        return replace(self, extra={**self.extra, key: value})

    def to_dict(self) -> dict:
        return dict(self._json)

    @cached_property
    def _json(self) -> dict:
        known = _drop_none({
            "name": self.name, "classes": list(self.classes),
            "normalization": self.normalization.to_dict() if self.normalization else None,
            "input_size": list(self.input_size) if self.input_size else None})
        tail = _drop_none({
            "log": [r.to_dict() for r in self.log] if self.log else None, "metrics": self.metrics or None,
            "scale_robustness": self.scale_robustness.to_dict() if self.scale_robustness else None})
        return {**known, **{k: v for k, v in self.extra.items() if k not in ("versions", "hardware")}, **tail,
                **{k: v for k, v in self.extra.items() if k in ("versions", "hardware")},
                # a version-1 card had no such field; it reads and writes back unchanged
                **({"card_version": self.card_version} if self.card_version > 1 else {}),
                "format_version": self.format_version, "model": self.model, "config": self.config,
                "sha256": self.sha256}

    def __getitem__(self, key: str):
        return self._json[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    def __eq__(self, other) -> bool:
        return isinstance(other, Mapping) and self._json == dict(other)

    __hash__ = None


def check_config(raw, where: str, path: str = "config", depth: int = 0) -> dict:
    """Every number in a model config is bounded before any builder sees it, so a card
    cannot make the loader allocate a 10-million-class classifier."""
    raw = _obj(raw, where, path)
    for k, v in raw.items():
        name = f"{path}.{k}"
        if k == "num_classes":
            _int(v, where, name, 1, MAX_CLASSES)
        elif isinstance(v, dict):
            check_config(v, where, name, depth + 1)
        elif isinstance(v, list | tuple) and len(v) <= 1000:
            for i, item in enumerate(v):
                _config_scalar(item, where, f"{name}[{i}]")
        else:
            _config_scalar(v, where, name)
    return raw


def _config_scalar(v, where: str, name: str) -> None:
    if isinstance(v, bool) or v is None or isinstance(v, str) and len(v) <= 100:
        return
    if isinstance(v, int):
        _int(v, where, name, 0, MAX_INT_CONFIG)
    elif isinstance(v, float):
        _number(v, where, name, -1e6, 1e6)
    else:
        _fail(where, name, f"must be a bounded number, boolean or short string, got {v!r:.80}")


def parse_card(raw: Any, where: str = "card.json") -> Card:
    """Checks a card's JSON object field by field and returns the :class:`Card`.

    Args:
        raw: the parsed JSON.
        where: what error messages name (the file).

    Raises:
        CheckpointError: naming the first field that is missing, of the wrong type or
            out of range.
    """
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    from .models import list_models  # the registry: the only models a card may name

    for key in ("model", "config", "classes", "sha256"):
        if key not in raw:
            raise CheckpointError(f"{where}: the card has no {key!r} field")
    version = _int(raw.get("card_version", 1), where, "card_version", 1, CARD_VERSION)
    model = raw["model"]
    if not isinstance(model, str) or model not in list_models():
        raise CheckpointError(f"{where}: the card names unknown model {model!r}")
    classes = _list(raw["classes"], where, "classes", min_len=1)
    if len(classes) > MAX_CLASSES:
        _fail(where, "classes", f"lists {len(classes)} names (at most {MAX_CLASSES})")
    classes = tuple(_str(c, where, f"classes[{i}]", 200) for i, c in enumerate(classes))
    if not re.fullmatch(r"[0-9a-f]{64}", str(raw["sha256"])):
        _fail(where, "sha256", f"must be 64 lowercase hex digits, got {raw['sha256']!r:.80}")
    size = raw.get("input_size")
    log = raw.get("log") or []
    metrics = raw.get("metrics") or {}
    for k, v in _obj(metrics, where, "metrics").items():
        if k.endswith("_acc"):
            _number(v, where, f"metrics.{k}", 0, 1)
        else:
            _opt_number(v, where, f"metrics.{k}")
    sr = raw.get("scale_robustness")
    card = Card(
        model=model, config=check_config(raw["config"], where), classes=classes, sha256=raw["sha256"],
        name=None if raw.get("name") is None else _str(raw["name"], where, "name", 200),
        normalization=None if raw.get("normalization") is None else Normalization.parse(raw["normalization"], where),
        input_size=None if size is None else tuple(_int(s, where, f"input_size[{i}]", 1, 4096)
                                                   for i, s in enumerate(_list(size, where, "input_size", 2))),
        log=tuple(LogRow.parse(r, where, i) for i, r in enumerate(_list(log, where, "log"))),
        metrics=metrics, scale_robustness=None if sr is None else ScaleRobustness.parse(sr, where),
        format_version=_int(raw.get("format_version", FORMAT_VERSION), where, "format_version", 1, FORMAT_VERSION),
        card_version=version, extra=_extra(raw, _TYPED))
    _check_blocks(card, where)
    return card


def _check_blocks(card: Card, where: str) -> None:
    recipe = card.extra.get("recipe")
    if recipe is not None:
        _obj(recipe, where, "recipe")
        if recipe.get("scale_jitter") is not None:
            _pair(recipe["scale_jitter"], where, "recipe.scale_jitter", *ZOOM_RANGE)
    data = card.extra.get("data")
    if data is not None and _obj(data, where, "data").get("source") is not None:
        _str(data["source"], where, "data.source")


def _depth(obj: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            return d
        if isinstance(o, dict):
            stack += [(v, d + 1) for v in o.values()]
        elif isinstance(o, list):
            stack += [(v, d + 1) for v in o]
    return deepest


class _TooLong:
    """An integer literal with more digits than Python converts (``sys.int_info``'s
    default limit of 4,300); kept as a marker so the error can name its field."""

    def __init__(self, digits: int):
        self.digits = digits


MAX_INT_DIGITS = 4000  # below Python's own limit: no integer a card holds comes close


def _parse_int(text: str):
    return _TooLong(len(text)) if len(text) > MAX_INT_DIGITS else int(text)


def _find_too_long(obj: Any) -> tuple[str, _TooLong] | None:
    """The dotted name of the first :class:`_TooLong` in parsed JSON, and the marker."""
    stack = [(obj, "")]
    while stack:
        o, name = stack.pop()
        if isinstance(o, _TooLong):
            return name or "(the card)", o
        if isinstance(o, dict):
            stack += [(v, f"{name}.{k}" if name else str(k)) for k, v in o.items()]
        elif isinstance(o, list):
            stack += [(v, f"{name}[{i}]") for i, v in enumerate(o)]
    return None


def loads_card(text: str | bytes, where: str = "card.json") -> Card:
    """Parses card JSON (size- and depth-limited) and validates it (:func:`parse_card`).

    Every way the text can fail to be a card is a :class:`CheckpointError` naming
    ``where`` (and the field, where there is one); no other exception comes out."""
    if not isinstance(text, str | bytes | bytearray):
        raise CheckpointError(f"{where}: expected the card's text, got {type(text).__name__}")
    if len(text) > MAX_CARD_BYTES:
        raise CheckpointError(f"{where}: {len(text)} bytes is too big for a card (at most {MAX_CARD_BYTES})")
    try:
        raw = json.loads(text, parse_constant=lambda c: _bad_constant(c, where), parse_int=_parse_int)
    except RecursionError:
        raise CheckpointError(f"{where}: nested too deeply (at most {MAX_DEPTH} levels)") from None
    except CheckpointError:
        raise
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, and any other conversion json makes
        raise CheckpointError(f"{where}: not valid JSON ({_short(e)})") from None
    if _depth(raw) > MAX_DEPTH:
        raise CheckpointError(f"{where}: nested too deeply (at most {MAX_DEPTH} levels)")
    long = _find_too_long(raw)
    if long is not None:
        _fail(where, long[0], f"is an integer of {long[1].digits:,} digits (at most {MAX_INT_DIGITS:,})")
    try:
        return parse_card(raw, where)
    except CheckpointError:
        raise
    except (RecursionError, MemoryError):
        raise CheckpointError(f"{where}: too big or too deeply nested to check") from None
    except Exception as e:  # a check this module does not foresee must still be the card's error
        raise CheckpointError(f"{where}: not a card this app can read ({type(e).__name__}: {_short(e)})") from None


def _short(e: BaseException, n: int = 200) -> str:
    text = str(e)
    return text if len(text) <= n else text[:n] + "..."


def _bad_constant(c: str, where: str):
    raise CheckpointError(f"{where}: {c} is not a number a card may hold")


def read_card_file(path: str | Path) -> Card:
    """Reads and validates ``path`` (a ``card.json``), refusing a file over the size cap
    before reading it."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CARD_BYTES:
            raise CheckpointError(f"{path}: {path.stat().st_size} bytes is too big for a card")
        text = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read it ({e.strerror or e})") from None
    return loads_card(text, str(path))


def dumps_card(card: Card | dict) -> str:
    """The one JSON form of a card (validated first if given as a dict)."""
    card = card if isinstance(card, Card) else parse_card(card)
    return json.dumps(card.to_dict(), indent=1, allow_nan=False) + "\n"


def epochs_trained(card: Mapping | None) -> int:
    """Epochs a card says its model was trained for: 0 for no card, an empty one, or one
    whose log is missing or unreadable. The app shows a model as trained only when > 0."""
    if isinstance(card, Card):
        return card.epochs_trained
    log = card.get("log") if isinstance(card, Mapping) else None
    if not isinstance(log, list):
        return 0
    epochs = [r.get("epoch") for r in log if isinstance(r, dict)]
    return max((e for e in epochs if isinstance(e, int) and not isinstance(e, bool) and e > 0), default=0)


def curve_of(card: Mapping | None) -> ScaleRobustness | None:
    """The card's scale-robustness block, typed; None when missing or malformed (for
    displays that list such a card as missing rather than fail)."""
    if isinstance(card, Card):
        return card.scale_robustness
    raw = card.get("scale_robustness") if isinstance(card, Mapping) else None
    try:
        return None if raw is None else ScaleRobustness.parse(raw, "card")
    except CheckpointError:
        return None


def log_of(card: Mapping | None) -> tuple[LogRow, ...]:
    """The card's training log, typed; () when missing or malformed."""
    if isinstance(card, Card):
        return card.log
    raw = card.get("log") if isinstance(card, Mapping) else None
    try:
        return tuple(LogRow.parse(r, "card", i) for i, r in enumerate(raw)) if isinstance(raw, list) else ()
    except CheckpointError:
        return ()


__all__ = [
    "CARD_VERSION", "Card", "CheckpointError", "check_config", "Comparison", "Difference", "LogRow", "Normalization",
    "ScaleRobustness", "TTACurve", "ZoomCurve", "curve_of", "dumps_card", "epochs_trained", "loads_card",
    "log_of", "parse_card", "read_card_file"]
