"""The one base for checked values: options and settings, typed and validated by pydantic.

    class SimOptions(Value):
        fill: Literal["next_open", "close"] = "next_open"
        cash: Annotated[Number, Field(gt=0)] = 100_000.0

    SimOptions(fill="tomorrow")  # ConfigError: fill must be one of 'next_open', 'close',
                                 #              got 'tomorrow'

A :class:`Value` is frozen (hashable, equal by its fields, picklable; assigning raises
``dataclasses.FrozenInstanceError``, as on a frozen dataclass), refuses unknown fields, and
takes its fields by keyword or, in declaration order, by position. Choices are ``Literal``
types, bounds are field constraints (``Field(ge=..., lt=...)``). Every bad value is a
:class:`~workbench.errors.ConfigError` on one line that names each bad field and the value
given (an unknown field: the closest valid name), never pydantic's ``ValidationError``:
:func:`config_error` is the one translation.

Numbers: :data:`Number` is a finite float that refuses booleans and strings (ints and
numpy numbers become plain floats, which the compiled backtest core reads); :data:`Whole`
an int that refuses booleans and strings. Imports only pydantic, the errors and the stdlib.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Annotated, Any

from pydantic import AllowInfNan, BaseModel, BeforeValidator, ConfigDict, Strict, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from workbench.errors import ConfigError

__all__ = ["Number", "Value", "Whole", "config_error"]


def _whole(value: Any) -> Any:
    if isinstance(value, (bool, str, bytes)):
        raise PydanticCustomError("whole_number", "a whole number")
    return value


Number = Annotated[float, Strict(), AllowInfNan(False)]
Whole = Annotated[int, BeforeValidator(_whole)]

_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
_KINDS = {"float_type": "a number", "float_parsing": "a number", "decimal_type": "a number",
          "decimal_parsing": "a number", "finite_number": "a finite number",
          "int_type": "a whole number", "int_parsing": "a whole number",
          "int_from_float": "a whole number"}


class Value(BaseModel):
    """Base of every checked option/settings value (see the module doc)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, *args: Any, **data: Any) -> None:
        cls = type(self)
        names = list(cls.model_fields)
        if len(args) > len(names):
            raise ConfigError(f"{cls.__name__} takes at most {len(names)} positional values, "
                              f"got {len(args)}")
        for name, value in zip(names, args):
            if name in data:
                raise ConfigError(f"{cls.__name__}: {name} given twice")
            data[name] = value
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise config_error(e, cls) from None

    @classmethod
    def model_validate(cls, obj: Any, **kw: Any):
        try:
            return super().model_validate(obj, **kw)
        except ValidationError as e:
            raise config_error(e, cls) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def config_error(error: ValidationError, model: type[BaseModel]) -> ConfigError:
    """``error`` (raised validating ``model``) as one line: each bad field, what it must be
    and the value given; an unknown field with the closest valid name."""
    fields: dict[str, list[dict]] = {}
    for e in error.errors(include_url=False):
        fields.setdefault(str(e["loc"][0]) if e["loc"] else "", []).append(e)
    return ConfigError("; ".join(_describe(model, name, errors)
                                 for name, errors in fields.items()))


def _describe(model: type[BaseModel], name: str, errors: list[dict]) -> str:
    if errors[0]["type"] == "extra_forbidden":
        close = difflib.get_close_matches(name, list(model.model_fields), n=1)
        hint = (f"did you mean {close[0]}?" if close
                else f"fields: {', '.join(model.model_fields)}")
        return f"{model.__name__} has no field {name!r} ({hint})"
    field = model.model_fields.get(name)
    if field is None:  # not about one field: pydantic's own words
        return f"{model.__name__}: " + "; ".join(e["msg"] for e in errors)
    label = f"{name} ({field.description})" if field.description else name
    if errors[0]["type"] == "missing":
        return f"{label} must be given"
    wants = dict.fromkeys(_want(field, e) for e in errors)  # a union: one per member
    return f"{label} must be {' or '.join(wants)}, got {errors[0]['input']!r}"


def _want(field: FieldInfo, error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "literal_error":
        choices = _choices(field.annotation)
        if not choices:
            return f"one of {ctx.get('expected', '?')}"
        return repr(choices[0]) if len(choices) == 1 else \
            "one of " + ", ".join(map(repr, choices))
    if any(key in ctx for key, _ in _BOUNDS):
        bounds = _bounds(field.metadata, ctx)
        return " and ".join(f"{sign} {value:g}" for sign, value in bounds)
    if kind in _KINDS:
        return _KINDS[kind]
    return error["msg"].removeprefix("Input should be ")


def _bounds(metadata, ctx: dict) -> list[tuple[str, Any]]:
    """The field's bounds (all of them, if the field carries them), else the one broken."""
    found = {key: getattr(m, key) for m in metadata for key, _ in _BOUNDS
             if getattr(m, key, None) is not None}
    given = found if any(key in found for key in ctx) else ctx
    return [(sign, given[key]) for key, sign in _BOUNDS if key in given]


def _choices(annotation) -> tuple:
    """The values of the ``Literal`` in ``annotation`` (inside unions and ``Annotated``)."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        found = _choices(arg)
        if found:
            return found
    return ()
