"""Declarative config specs. What each key accepts (JSON type, default, enum, numeric bounds, nested keys) and the
cross-key rules are stated once, on the dataclasses in config.py (type hints, `setting(...)` metadata, a `RULES`
class attribute). The same specs drive validation (every problem at once, each naming its key) and
`python -m cotmae_trainer schema <command>`: the JSON that lib/trainer/config-schema.ts validates against before
anything reaches a GPU. Format (SCHEMA_FORMAT) in trainer/README.md, "Config schema".
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Literal

from .common import ConfigError

SCHEMA_FORMAT = "cotmae-trainer-config-schema/1"
BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")  # JSON Schema's names
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object"}
ARTICLES = {"integer": "an integer", "number": "a number", "boolean": "a boolean", "string": "a string",
            "object": "an object"}


def setting(default: Any = MISSING, *, default_factory: Any = MISSING, minimum: float | None = None,
            exclusive_minimum: float | None = None, maximum: float | None = None,
            exclusive_maximum: float | None = None, aliases: tuple[str, ...] = (), shape: type | None = None,
            resumable: bool = False) -> Any:
    """A dataclass field with what validation enforces beyond its type: numeric bounds, names people type for it
    (other trainers' spellings, suggested for an unknown key), the dataclass describing a plain dict's keys
    (`shape`), and whether a resumed run may change it."""
    bounds = dict(zip(BOUNDS, (minimum, exclusive_minimum, maximum, exclusive_maximum)))
    metadata = {"bounds": {k: v for k, v in bounds.items() if v is not None}, "aliases": aliases, "shape": shape,
                "resumable": resumable}
    return field(default=default, default_factory=default_factory, metadata=metadata)


@dataclass(frozen=True)
class Rule:
    """A cross-key rule of one object, evaluated with defaults filled in and skipped when one of its keys already
    has a problem. `key`: the key a violation is reported under (None: the object itself)."""

    name: str
    kind: Literal["exactly_one_of", "divisible", "any_positive"]
    keys: tuple[str, ...]
    message: str
    key: str | None = None

    def holds(self, values: dict) -> bool:
        args = [values.get(k) for k in self.keys]
        if self.kind == "exactly_one_of":
            return sum(v is not None for v in args) == 1
        if self.kind == "divisible":
            return args[0] % args[1] == 0
        return any(v > 0 for v in args)  # any_positive

    def problem(self, values: dict) -> str:
        return f"{self.message} (got {', '.join(f'{k}={show(values.get(k), brief=True)}' for k in self.keys)})"


@dataclass(frozen=True)
class KeySpec:
    name: str
    types: tuple[str, ...]  # JSON types; the first is the value's own, "null" (optional) comes last
    default: Any
    enum: tuple | None = None
    bounds: dict = field(default_factory=dict)
    shape: type | None = None  # dataclass describing an object value's keys
    build: bool = False  # True: the object becomes that dataclass; False: it stays a dict (only given keys)
    aliases: tuple[str, ...] = ()
    resumable: bool = False

    @property
    def expect(self) -> str:
        """What the key accepts, in words: the body of every 'must be ..., got ...' message (Python and TS)."""
        if self.enum is not None:
            text = "one of " + ", ".join(show(v) for v in self.enum)
        else:
            text = ARTICLES[self.types[0]] + bounds_text(self.bounds)
        return text + " or null" if "null" in self.types else text


@functools.cache
def key_specs(cls: type) -> dict[str, KeySpec]:
    hints = typing.get_type_hints(cls)
    return {f.name: _key_spec(f, hints[f.name]) for f in dataclasses.fields(cls)}


def _key_spec(f: dataclasses.Field, hint: Any) -> KeySpec:
    nullable = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
    if nullable:
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    enum, shape = None, f.metadata.get("shape")
    if typing.get_origin(hint) is Literal:
        enum = typing.get_args(hint)
        json_type = JSON_TYPES[type(enum[0])]
    elif dataclasses.is_dataclass(hint):
        json_type, shape = "object", hint
    else:
        json_type = JSON_TYPES[hint]
    default = f.default if f.default is not MISSING else f.default_factory()
    if dataclasses.is_dataclass(default):
        default = dataclasses.asdict(default)
    return KeySpec(f.name, (json_type, "null") if nullable else (json_type,), default, enum,
                   f.metadata.get("bounds", {}), shape, dataclasses.is_dataclass(hint),
                   f.metadata.get("aliases", ()), f.metadata.get("resumable", False))


def bounds_text(bounds: dict) -> str:
    low = [f"{'[' if k == 'minimum' else '('}{show(v)}" for k, v in bounds.items() if k.endswith("inimum")]
    high = [f"{show(v)}{']' if k == 'maximum' else ')'}" for k, v in bounds.items() if k.endswith("aximum")]
    if low and high:
        return f" in {low[0]}, {high[0]}"
    ops = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    return "".join(f" {ops[k]} {show(v)}" for k, v in bounds.items())


def show(value: Any, brief: bool = False) -> str:
    """A value as JSON (objects as {...} in rule messages); what the TS validator prints too."""
    if brief and isinstance(value, dict):
        return "{...}"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


# ------------------------------------------------------------------------------------------------ validation


def object_problems(cls: type, data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every problem of JSON object `data` as dataclass `cls`: (full dotted key, reason), in key order, then the
    rules. Nothing stops at the first problem."""
    if not isinstance(data, dict):
        return [(prefix.rstrip(".") or "config", f"must be an object, got {show(data)}")]
    specs = key_specs(cls)
    problems, bad = [], set()
    for key, value in data.items():
        spec = specs.get(key)
        if spec is None:
            bad.add(key)
            problems.append((prefix + key, unknown_key(key, specs)))
            continue
        if not value_ok(spec, value):  # a problem inside a nested object leaves this key usable by the rules
            bad.add(key)
        problems += value_problems(spec, value, prefix + key)
    values = {**{k: s.default for k, s in specs.items()}, **data}
    for rule in getattr(cls, "RULES", ()):
        if bad.isdisjoint(rule.keys) and not rule.holds(values):
            problems.append((prefix + rule.key if rule.key else prefix.rstrip(".") or "config", rule.problem(values)))
    return problems


def value_problems(spec: KeySpec, value: Any, key: str) -> list[tuple[str, str]]:
    if not value_ok(spec, value):
        return [(key, f"must be {spec.expect}, got {show(value)}")]
    return object_problems(spec.shape, value, key + ".") if value is not None and spec.shape is not None else []


def value_ok(spec: KeySpec, value: Any) -> bool:
    """The value itself: JSON type, enum, bounds (an object's own keys are checked separately)."""
    if value is None:
        return "null" in spec.types
    return _type_ok(spec.types[0], value) and (spec.enum is None or value in spec.enum) and _in_bounds(spec, value)


def _type_ok(json_type: str, value: Any) -> bool:
    # bool is an int in Python: reject true/false where a number is expected, and 1.5 where an integer is.
    if json_type in ("integer", "number") and isinstance(value, bool):
        return False
    if json_type == "number":  # JSON has no NaN/Infinity, but Python's json module reads them
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, {"integer": int, "boolean": bool, "string": str, "object": dict}[json_type])


def _in_bounds(spec: KeySpec, value: Any) -> bool:
    checks = {"minimum": lambda b: value >= b, "exclusiveMinimum": lambda b: value > b,
              "maximum": lambda b: value <= b, "exclusiveMaximum": lambda b: value < b}
    return all(checks[k](b) for k, b in spec.bounds.items())


def unknown_key(key: str, specs: dict[str, KeySpec]) -> str:
    match = suggest(key, specs)
    return f"unknown key (did you mean {match}?)" if match else "unknown key"


def suggest(key: str, specs: dict[str, KeySpec]) -> str | None:
    """A known key for an unknown one: one listing it as an alias, else the closest by edit distance (at most
    a third of its length, case-insensitive). The TS validator does the same."""
    for spec in specs.values():
        if key in spec.aliases:
            return spec.name
    limit = max(1, len(key) // 3)
    distances = [(edit_distance(key.lower(), name.lower()), name) for name in specs]
    best = min(distances, key=lambda d: d[0], default=None)
    return best[1] if best is not None and best[0] <= limit else None


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def check(obj: Any) -> None:
    """__post_init__ of a config dataclass: the same checks on a directly constructed instance."""
    problems = object_problems(type(obj), dataclasses.asdict(obj))
    if problems:
        raise ConfigError.of(problems)


def build(cls: type, data: dict) -> Any:
    """A checked JSON object -> dataclass `cls`: numbers become floats where the type is float, nested
    dataclasses are built, shaped dicts stay dicts."""
    specs, values = key_specs(cls), {}
    for key, value in data.items():
        spec = specs[key]
        if value is not None and spec.build:
            value = build(spec.shape, value)
        elif value is not None and spec.types[0] == "number":
            value = float(value)
        values[key] = value
    return cls(**values)


# ------------------------------------------------------------------------------------------------ schema


def config_schema(command: str, cls: type) -> dict:
    """The machine-readable description of command's config (trainer/README.md, "Config schema")."""
    return {"format": SCHEMA_FORMAT, "command": command, "title": cls.__name__,
            "$comment": f"generated by `python -m cotmae_trainer schema {command}` from config.py; do not edit",
            **_object_schema(cls)}


def _object_schema(cls: type) -> dict:
    rules = [{"name": r.name, "kind": r.kind, "keys": list(r.keys), "key": r.key, "message": r.message}
             for r in getattr(cls, "RULES", ())]
    return {"keys": {name: _key_schema(spec) for name, spec in key_specs(cls).items()}, "rules": rules}


def _key_schema(spec: KeySpec) -> dict:
    out: dict[str, Any] = {"type": list(spec.types), "default": spec.default}
    if spec.enum is not None:
        out["enum"] = list(spec.enum)
    out.update(spec.bounds)
    out["expect"] = spec.expect
    if spec.aliases:
        out["aliases"] = list(spec.aliases)
    if spec.resumable:
        out["resumable"] = True
    if spec.shape is not None:
        out.update(_object_schema(spec.shape))
    return out
