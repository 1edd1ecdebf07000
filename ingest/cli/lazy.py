"""What `logs` leaves out of start-up, so a command pays only for itself (`logs sql` is run
dozens of times in a row):

- command modules are imported when their command runs (`LazyGroup`), not all for every call;
- parameters are converted by plain Python (`LightCommand`). Typer 0.29 converts every value
  through a pydantic TypeAdapter, and importing pydantic and building the adapters cost more
  than DuckDB's own start-up. Simple annotations (str, int, float, bool, Path, enums, lists of
  them, a `parser=`) take the light path; anything with constraints keeps Typer's.

Both lean on two of Typer's internals (`typer._coercion.RuntimeParam` and a parameter's
`_runtime_param`); if a Typer release moves them, the light path switches itself off and Typer
converts as usual (tests/test_cli.py notices the lost speed: pydantic is imported again).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import DefaultPlaceholder

try:
    from typer._coercion import RuntimeParam
except ImportError:  # pragma: no cover - a Typer without the runtime-param layer
    RuntimeParam = None  # type: ignore[assignment,misc]

COMMAND_MODULES = ("run", "send", "write", "receive", "query", "schedule", "ops", "tail", "dlq")
"""The modules of ingest/cli that register commands, in the order of `logs --help`."""

HOMES = {
    "demo": "run",
    "up": "run",
    "send": "send",
    "parse": "send",
    "gen": "write",
    "ingest": "write",
    "down": "write",
    "receive": "receive",
    "sql": "query",
    "schema": "query",
    "export": "query",
    "compact": "schedule",
    "rollup": "schedule",
    "maintain": "schedule",
    "schedule": "schedule",
    "status": "ops",
    "config": "ops",
    "tail": "tail",
    "dlq": "dlq",
}
"""Which module registers each command: only that one is imported to run it. A command missing
here still works (every module is loaded to find it); tests/test_cli.py keeps this complete."""


class LightGroup(TyperGroup):
    """A group (`logs dlq`) whose own options take the light path."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Here, not in __init__: Typer appends its completion flags later, click its --help.
        lighten(self.get_params(ctx))
        return super().parse_args(ctx, args)


class LazyGroup(LightGroup):
    """The `logs` group: a command's module is imported and the command built when asked for
    (building one costs ~1 ms of signature reading: only the one that runs is built)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parts: dict[str, typer.Typer] = {}
        """Module -> a Typer holding what it registered, built or not."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = []
        for module in COMMAND_MODULES:
            part = self._part(module)
            names += [_name(c) for c in part.registered_commands]
            names += [g.name for g in part.registered_groups if g.name]
        return names

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """`logs --help`'s list of commands, from summaries: building all twenty commands to
        show a line of each would cost ~20 ms."""
        self._summarising = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._summarising = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if getattr(self, "_summarising", False) and cmd_name not in self.commands:
            summary = self._summary(cmd_name)
            if summary is not None:
                return summary
        if cmd_name not in self.commands:
            home = HOMES.get(cmd_name)
            for module in ([home] if home else []) + list(COMMAND_MODULES):
                if self._build(module, cmd_name):
                    break
        return self.commands.get(cmd_name)

    def _part(self, module: str) -> typer.Typer:
        if module not in self._parts:
            registrar = importlib.import_module(f"ingest.cli.{module}")
            part = typer.Typer(rich_markup_mode=None, add_completion=False)
            registrar.register(part)
            for group in part.registered_groups:  # sub-groups (`logs dlq`) that chose no class
                instance = group.typer_instance
                chosen = [group.cls, instance.info.cls if instance is not None else None]
                if all(isinstance(c, DefaultPlaceholder) for c in chosen):
                    group.cls = LightGroup
            self._parts[module] = part
        return self._parts[module]

    def _build(self, module: str, cmd_name: str) -> bool:
        """Build `cmd_name` if `module` registered it; whether it did."""
        part = self._part(module)
        one = typer.Typer(rich_markup_mode=None, add_completion=False)
        one.registered_commands = [c for c in part.registered_commands if _name(c) == cmd_name]
        one.registered_groups = [g for g in part.registered_groups if g.name == cmd_name]
        if not (one.registered_commands or one.registered_groups):
            return False
        self.commands.update(typer.main.get_group(one).commands)
        return True

    def _summary(self, cmd_name: str) -> TyperCommand | None:
        """A parameterless stand-in with the help a built command would have (Typer's rule:
        `help=`, else the docstring), for the list only; None for a group."""
        import inspect

        for module in COMMAND_MODULES:
            for info in self._part(module).registered_commands:
                if _name(info) == cmd_name:
                    doc = inspect.getdoc(info.callback) if info.help is None else None
                    return TyperCommand(
                        cmd_name,
                        help=inspect.cleandoc(info.help) if info.help is not None else doc,
                        short_help=info.short_help,
                        hidden=info.hidden,
                        deprecated=info.deprecated,
                    )
        return None


def _name(info: Any) -> str:
    """The name a registered command goes by (Typer's rule: the function's, dashed)."""
    return str(info.name or typer.main.get_command_name(info.callback.__name__))


class LightCommand(TyperCommand):
    """A command whose simple parameters are converted without pydantic (see the module doc)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        lighten(self.get_params(ctx))
        return super().parse_args(ctx, args)


def lighten(params: Iterable[Any]) -> None:
    """Give each simple parameter a plain-Python converter in place of Typer's pydantic one."""
    if RuntimeParam is None:
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", True) is not None:
            continue  # not Typer's, or converted already
        light = _light_param(descriptor, param)
        if light is not None:
            param._runtime_param = light


def _light_param(descriptor: Any, param: Any) -> Any:
    info, annotation = descriptor.parameter_info, descriptor.annotation
    if descriptor.file_annotation is not None:
        return None
    many = bool(param.multiple or param.nargs != 1)
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation) or (str,)
    elif many:
        return None  # tuples and other shapes: Typer's own conversion
    if many and param.nargs not in (1, -1) and info.parser is None:
        return None
    convert = _converter(annotation, info)
    if convert is None:
        return None
    return _LightParam(info, descriptor.annotation, convert, many)


def _converter(annotation: Any, info: Any) -> Callable[[Any], Any] | None:
    if info.parser is not None:
        return info.parser  # type: ignore[no-any-return]
    if annotation is str:
        return _text
    if annotation is bool:
        return _flag
    if annotation in (int, float):
        if info.min is not None or info.max is not None or info.clamp:
            return None
        return _integer if annotation is int else _float
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choice(annotation, info.case_sensitive)
    plain_path = not (info.exists or info.resolve_path or info.allow_dash or info.path_type)
    if annotation is Path and plain_path and info.file_okay and info.dir_okay:
        return Path
    return None


if RuntimeParam is not None:

    class _LightParam(RuntimeParam):
        """Typer's runtime parameter (a frozen dataclass) plus a converter; not a dataclass
        of its own, which would cost ~0.6 ms of start-up to define."""

        convert: Callable[[Any], Any]
        many: bool

        def __init__(
            self, info: Any, annotation: Any, convert: Callable[[Any], Any], many: bool
        ) -> None:
            super().__init__(info, annotation)
            object.__setattr__(self, "convert", convert)
            object.__setattr__(self, "many", many)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                if self.many:
                    return [self.convert(item) for item in value]
                return self.convert(value)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), ctx=ctx, param=param) from None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y", "on"):
        return True
    if text in ("0", "false", "f", "no", "n", "off", ""):
        return False
    raise ValueError(f"{value!r} is not a valid boolean.")


def _integer(value: Any) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a valid integer.") from None


def _float(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not a valid float.") from None


def _choice(kind: type[Enum], case_sensitive: bool) -> Callable[[Any], Enum]:
    def choose(value: Any) -> Enum:
        if isinstance(value, kind):
            return value
        wanted = str(value) if case_sensitive else str(value).casefold()
        for member in kind:
            name = str(member.value)
            if (name if case_sensitive else name.casefold()) == wanted:
                return member
        names = ", ".join(repr(str(m.value)) for m in kind)
        raise ValueError(f"{value!r} is not one of {names}.")

    return choose
