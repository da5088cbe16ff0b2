"""One declaration per option: a command's options are the fields of a dataclass.

Each field declares its default and its help text once, with :func:`option`. From those
fields :func:`add_arguments` makes the command-line parser, :func:`from_args` turns what
was parsed back into the dataclass (whose ``__post_init__`` checks the values, for the
command line and for Python callers alike), and :func:`to_argv` writes the command line
that repeats a config. A run folder records ``dataclasses.asdict(config)``.

Values are parsed here rather than by argparse, so that a bad value is one
:class:`~course_lib.errors.CourseError` line that names the option and the fix, like every
other mistake a user can make.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from course_lib.errors import CourseError

__all__ = ["add_arguments", "flag_of", "from_args", "option", "per_key", "to_argv", "whole_number", "words"]

_META = "course_lib.option"


@dataclasses.dataclass(frozen=True)
class _Option:
    help: str
    parse: Callable[[str], Any] | None
    show: Callable[[Any], str]
    choices: tuple | None
    metavar: str | None
    many: bool
    positional: bool
    required: bool
    default_text: str | None


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    parse: Callable[[str], Any] | None = None,
    show: Callable[[Any], str] = str,
    choices: Iterable | None = None,
    metavar: str | None = None,
    many: bool = False,
    positional: bool = False,
    required: bool = False,
    default_text: str | None = None,
) -> Any:
    """A dataclass field that is also a command-line option ``--field-name``.

    ``parse`` turns one word of the command line into a value (default: the type of
    ``default``, else ``str``); ``show`` turns a value back into a word. A ``bool`` option
    is a switch: ``--name`` when it defaults to False, ``--no-name`` when it defaults to
    True. ``many`` takes one or more words (spaces or commas between them) into a list.
    ``default_text`` replaces the default shown in ``--help`` (for defaults chosen at run
    time). Lists and dicts as defaults are copied for each instance.
    """
    meta = _Option(
        help,
        parse,
        show,
        tuple(choices) if choices is not None else None,
        metavar,
        many,
        positional,
        required,
        default_text,
    )
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={_META: meta})
    return dataclasses.field(default=default, metadata={_META: meta})


def _options(config_class: type) -> list[tuple[dataclasses.Field, _Option]]:
    return [(f, f.metadata[_META]) for f in dataclasses.fields(config_class) if _META in f.metadata]


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def flag_of(name: str) -> str:
    """The command-line spelling of a field: ``image_size`` -> ``--image-size``."""
    return "--" + name.replace("_", "-")


def _shown(value: Any, meta: _Option) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(meta.show(v) for v in value)
    return meta.show(value)


def add_arguments(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One argparse option per field of ``config_class``; values stay words until :func:`from_args`."""
    for field, meta in _options(config_class):
        default = _default(field)
        text = meta.help
        if isinstance(default, bool):
            switch = flag_of(("no_" if default else "") + field.name)
            parser.add_argument(switch, dest=field.name, action="store_false" if default else "store_true", help=text)
            continue
        if meta.default_text is not None:
            text += f" (default: {meta.default_text})"
        elif default is not dataclasses.MISSING and default is not None and not meta.required:
            text += f" (default: {_shown(default, meta)})"
        kwargs: dict[str, Any] = {"help": text, "metavar": meta.metavar}
        if meta.choices is not None:
            kwargs["choices"] = meta.choices
        if meta.many:
            kwargs["nargs"] = "+"
        if meta.positional:
            if default is not dataclasses.MISSING:
                kwargs["nargs"] = "?"
            parser.add_argument(field.name, **kwargs)
        else:
            parser.add_argument(flag_of(field.name), dest=field.name, required=meta.required, **kwargs)


def _parse_word(word: str, field: dataclasses.Field, meta: _Option) -> Any:
    parse = meta.parse
    if parse is None:
        default = _default(field)
        sample = default[0] if isinstance(default, list) and default else default
        parse = type(sample) if isinstance(sample, (int, float, Path)) and not isinstance(sample, bool) else str
    try:
        return parse(word)
    except ValueError:
        kind = {int: "a whole number", float: "a number"}.get(parse, "a valid value")
        raise CourseError(f"{flag_of(field.name)} takes {kind}, not {word!r}.") from None


def from_args(config_class: type, args: argparse.Namespace, **extra: Any) -> Any:
    """The config that ``args`` (from a parser made by :func:`add_arguments`) describes."""
    values: dict[str, Any] = {}
    for field, meta in _options(config_class):
        if not hasattr(args, field.name):
            continue
        value = getattr(args, field.name)
        if value is None:  # not given: the dataclass's default applies
            continue
        if isinstance(value, bool):
            values[field.name] = value
        elif meta.many:
            values[field.name] = [_parse_word(word, field, meta) for word in words(value)]
        else:
            values[field.name] = _parse_word(value, field, meta) if isinstance(value, str) else value
    return config_class(**values, **extra)


def to_argv(config: Any) -> list[str]:
    """The command-line words that repeat ``config``: every option that differs from its default."""
    argv: list[str] = []
    for field, meta in _options(type(config)):
        value, default = getattr(config, field.name), _default(field)
        if value == default and not meta.required and not meta.positional:
            continue
        if meta.positional:
            if value is not None:  # an optional positional left out stays out
                argv.append(_shown(value, meta))
        elif isinstance(value, bool):
            argv.append(flag_of(("no_" if default else "") + field.name))
        elif value is not None:
            argv.append(flag_of(field.name))
            argv += [meta.show(v) for v in value] if isinstance(value, (list, tuple)) else [meta.show(value)]
    return argv


def words(values: str | Iterable[str]) -> list[str]:
    """``["fresh,finetune", "feature_extraction"]`` -> ``["fresh", "finetune", "feature_extraction"]``."""
    if isinstance(values, str):
        values = [values]
    return [word for value in values for word in str(value).replace(",", " ").split()]


def whole_number(option_name: str, minimum: int = 0) -> Callable[[str], int]:
    """A parser of whole numbers of at least ``minimum``, with a message that names the option."""

    def parse(word: str) -> int:
        try:
            value = int(word)
        except ValueError:
            raise CourseError(f"{option_name} takes whole numbers, not {word!r}.") from None
        if value < minimum:
            raise CourseError(f"{option_name} must be at least {minimum}; got {value}.")
        return value

    return parse


def per_key(
    option_name: str, keys: Iterable[str], kind: Callable[[str], Any], defaults: Mapping[str, Any] | None = None
) -> Callable[[str], dict]:
    """A parser of ``"10"`` (every key) or ``"fresh=8,finetune=4"`` (over ``defaults``) into a dict."""
    keys = tuple(keys)

    def parse(text: str) -> dict:
        values = dict(defaults or {})
        try:
            if "=" not in text:
                values = {key: kind(text) for key in keys}
            else:
                for pair in text.split(","):
                    key, value = (part.strip() for part in pair.split("=", 1))
                    if key not in keys:
                        raise CourseError(f"{option_name}: unknown regime {key!r}; choose from {', '.join(keys)}.")
                    values[key] = kind(value)
        except ValueError:
            raise CourseError(
                f"{option_name} takes a number or REGIME=NUMBER pairs separated by commas, not {text!r}."
            ) from None
        if any(v <= 0 for v in values.values()):
            raise CourseError(f"{option_name} values must be positive; got {text!r}.")
        return values

    return parse
