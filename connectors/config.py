"""What every ``[sources.X]`` model shares: strict tables, secret references, checked paths, plain problems.

Each source type's table is a pydantic model in its connector's ``config.py``; ``flows.config`` joins them
in a union on ``type``. Tables are strict (TOML already has types; ``"5"`` is not a number) and refuse
unknown keys. A problem is a dotted place and a one-line message; text of a wrong type is never shown
(it may be a secret written where it should not be).
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NamedTuple, Self, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]


class Problem(NamedTuple):
    loc: Loc  # the dotted place it is about
    message: str
    anchor: Loc | None = None  # the place whose line shows it, when not ``loc`` (a table's unknown key)


Resolve = Callable[[Any, str], str]  # flows.config.resolve_secret, handed in: connectors never import flows


class Table(BaseModel):
    """A TOML table: strict types, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, arbitrary_types_allowed=True)


class SecretRef(Table):
    """``{ env = "NAME" }`` or ``{ secret = "prefect-block" }``: where a secret lives, never the secret."""

    env: str | None = None
    secret: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.secret is None):
            raise PydanticCustomError(
                "secret_ref", 'give one of { env = "NAME" } or { secret = "block-name" }'
            )
        return self

    def as_dict(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


class SourceTable(Table):
    """What every ``[sources.X]`` table has besides its own keys; subclasses narrow ``type`` to a Literal.

    ``retired = 2026-09-30`` (a TOML date) marks a source gone for good, e.g. Project Online after its
    retirement: it is not synced any more (its secrets are not even read), its rows stay in the warehouse and
    keep reconciling, and freshness shows it as retired on that day rather than failing.
    """

    type: str
    instance: str | None = None  # as configured; None lets the connector derive it (tenant, site host)
    retired: date | None = None

    @classmethod
    def of(cls, sc: Any, base: Path) -> Self:
        """The validated table of a ``flows.config.SourceConfig`` (raises ValidationError)."""
        return cls.model_validate(table_of(sc), context={"base": base})


def table_of(sc: Any) -> dict[str, Any]:
    """A ``SourceConfig`` back as the table it was read from."""
    data = {"type": sc.type, **sc.settings}
    if sc.instance is not None:
        data["instance"] = sc.instance
    if sc.streams:
        data["streams"] = sc.streams
    return data


def _positive(value: float) -> float:
    if value <= 0:
        raise PydanticCustomError("rule", "must be a positive number")
    return value


def _not_negative(value: float) -> float:
    if value < 0:
        raise PydanticCustomError("rule", "must not be negative")
    return value


Positive = Annotated[float, AfterValidator(_positive)]
PositiveInt = Annotated[int, AfterValidator(_positive)]
NotNegative = Annotated[float, AfterValidator(_not_negative)]


def _base(info: ValidationInfo) -> Path:
    """Relative paths are relative to the configuration file (``context={"base": ...}``)."""
    return (info.context or {}).get("base", Path("."))


def _existing(value: Any, info: ValidationInfo, kind: str) -> Path:
    if not isinstance(value, str) or not value:
        raise PydanticCustomError("path_type", "must be a path (text), got {got}", {"got": repr(value)})
    p = Path(value)
    p = p if p.is_absolute() else _base(info) / p
    if not p.exists():
        raise PydanticCustomError(
            "path_missing", "{kind} {path} does not exist", {"kind": kind, "path": str(p)}
        )
    if not (p.is_dir() if kind == "folder" else p.is_file()):
        raise PydanticCustomError("path_kind", "{path} is not a {kind}", {"kind": kind, "path": str(p)})
    return p


def folder_path(value: Any, info: ValidationInfo) -> Path:
    """An existing folder, absolute (relative to the configuration file)."""
    return _existing(value, info, "folder")


def file_path(value: Any, info: ValidationInfo) -> Path:
    """An existing file, absolute (relative to the configuration file)."""
    return _existing(value, info, "file")


Folder = Annotated[Path, PlainValidator(folder_path)]
File = Annotated[Path, PlainValidator(file_path)]


def profile_loader(
    load: Callable[[str, Path | None], Any], error: type[Exception]
) -> Callable[[Any, ValidationInfo], Any]:
    """A file source's ``profile`` validator: a built-in profile's name or a profile file (relative to the
    configuration file), loaded now so that ``config check`` names a bad one by its ``error``."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("rule", "a profile name or file, got {got}", {"got": repr(value)})
        try:
            return load(value, (info.context or {}).get("base"))
        except error as e:
            raise PydanticCustomError("rule", "{e}", {"e": str(e)}) from None

    return validate


def at(key: str | Loc, message: str, **ctx: Any) -> PydanticCustomError:
    """A model-level rule's problem about one of its keys (``problems`` adds ``key`` to the place)."""
    return PydanticCustomError("rule", message, {**ctx, "at": (key,) if isinstance(key, str) else key})


def problems(
    errors: list[Any], root: type[BaseModel], strip: Callable[[Loc], Loc] = lambda loc: loc
) -> list[Problem]:
    """``ValidationError.errors()`` of validating ``root`` as (place, message): unknown keys grouped per
    table with a guess at the intended key, missing keys with their field's description, a rule's problem
    at its key.

    ``strip`` removes what is not a place in the file from pydantic's location (a union's tag)."""
    unknown: dict[Loc, list[str]] = {}  # table as pydantic locates it → its unknown keys
    out: list[Problem] = []
    for e in errors:
        loc = tuple(e["loc"])
        ctx = e.get("ctx") or {}
        if e["type"] == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
        elif e["type"] == "missing":
            model = _model_at(root, loc[:-1])
            field = model.model_fields.get(str(loc[-1])) if model is not None else None
            hint = field.description if field is not None else None
            out.append(Problem(strip(loc), f"missing ({hint})" if hint else "missing"))
        elif e["type"] in ("union_tag_invalid", "union_tag_not_found"):  # ``type`` picks the source's model
            key, known = ctx["discriminator"].strip("'"), sorted(_tags_at(root, loc))
            told = f"{ctx['tag']!r} is not a known source {key}" if "tag" in ctx else "missing"
            out.append(Problem((*strip(loc), key), f"{told} (one of {', '.join(known)})"))
        elif "at" in ctx:
            out.append(Problem((*strip(loc), *ctx["at"]), e["msg"]))
        else:
            out.append(Problem(strip(loc), _message(e)))
    grouped = [
        Problem(strip(t), _unknown(keys, _model_at(root, t)), (*strip(t), keys[0]))
        for t, keys in unknown.items()
    ]
    return grouped + out


def _unknown(keys: list[str], model: type[BaseModel] | None) -> str:
    known = list(model.model_fields) if model is not None else []
    guesses = [
        f"{m[0]!r}" + (f" for {k!r}" if len(keys) > 1 else "")
        for k in keys
        if (m := difflib.get_close_matches(k, known, n=1))
    ]
    return f"unknown keys {sorted(keys)}" + (f" (did you mean {', '.join(guesses)}?)" if guesses else "")


OURS = ("rule", "path_type", "path_missing", "path_kind", "secret_ref")


def _message(e: Any) -> str:
    """Pydantic's message, lower-cased to read after a colon; for a wrong type, the kind of value found
    (a number as itself, text only as ``str``: it may be a secret written where it should not be)."""
    msg: str = e["msg"]
    if e["type"] in OURS:
        return msg
    msg = msg[0].lower() + msg[1:]
    if e["type"].endswith("_type"):
        got = e["input"]
        shown = repr(got) if isinstance(got, int | float | bool) else type(got).__name__
        return f"{msg}, got {shown}"
    return msg


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the table at ``loc`` (as pydantic locates it, union tags included)."""
    hint = _plain(_hint_at(root, loc))
    return hint if isinstance(hint, type) and issubclass(hint, BaseModel) else None


def _tags_at(root: type[BaseModel], loc: Loc) -> list[str]:
    """The tags a tagged union at ``loc`` accepts."""
    return [t for m in get_args(_plain(_hint_at(root, loc))) for t in _tags(m)]


def _hint_at(root: type[BaseModel], loc: Loc) -> Any:
    """The type hint of what validates the value at ``loc``, or None."""
    hint: Any = root
    for part in loc:
        hint = _plain(hint)
        if get_origin(hint) in (Union, types.UnionType):  # a tagged union: ``part`` is the tag
            hint = next((m for m in get_args(hint) if part in _tags(m)), None)
        elif isinstance(hint, type) and issubclass(hint, BaseModel) and str(part) in hint.model_fields:
            hint = hint.model_fields[str(part)].annotation
        elif get_origin(hint) is dict:
            hint = get_args(hint)[1]
        else:
            return None
    return hint


def _tags(model: Any) -> tuple[Any, ...]:
    field = getattr(model, "model_fields", {}).get("type")
    return get_args(field.annotation) if field is not None else ()


def _plain(hint: Any) -> Any:
    """``hint`` without Annotated and without ``| None``."""
    while get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    if get_origin(hint) in (Union, types.UnionType):
        members = [a for a in get_args(hint) if a is not type(None)]
        return _plain(members[0]) if len(members) == 1 else Union[tuple(members)]  # noqa: UP007
    return hint


def check_source(model: type[SourceTable], sc: Any, where: str, base: Path) -> list[str]:
    """Validate one source table alone, problems as ``where.key: message`` lines; ``flows.config`` checks
    the whole file instead, and adds each problem's line."""
    try:
        model.of(sc, base)
    except ValidationError as e:
        return [f"{where}{''.join(f'.{p}' for p in p.loc)}: {p.message}" for p in problems(e.errors(), model)]
    return []
