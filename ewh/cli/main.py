"""The `ewh` command line. The only module that prints.

Add a subcommand by writing one function decorated with `@command(...)` in a module
of its own under `ewh/cli/`: it receives its
argparse parser, declares its arguments, and returns the handler that runs it (exit code).
Heavy imports stay inside the handlers so `ewh --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Handler = Callable[[argparse.Namespace], int]
Configure = Callable[[argparse.ArgumentParser], Handler]


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    configure: Configure


COMMANDS: list[_Command] = []
# commands whose arguments all go to another tool, as `args.passthrough`
PASSTHROUGH: set[str] = set()


def command(name: str, help: str, passthrough: bool = False) -> Callable[[Configure], Configure]:
    """Register a subcommand; the decorated function configures the parser, returns the handler."""

    def register(configure: Configure) -> Configure:
        COMMANDS.append(_Command(name, help, configure))
        if passthrough:
            PASSTHROUGH.add(name)
        return configure

    return register


class OperationalError(Exception):
    """A failure of the job itself (bad path, locked warehouse), as opposed to bad records."""


def _register_all() -> None:
    """Import every module of this package: each registers its subcommands."""
    import ewh.cli as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "main" and not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("engagement-warehouse")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    _register_all()
    parser = argparse.ArgumentParser(prog="ewh", description="engagement_warehouse jobs")
    parser.add_argument("--version", action="version", version=f"ewh {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS:
        sub = subparsers.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        sub.set_defaults(handler=cmd.configure(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Great Expectations imports pyspark when it is installed (the Spark target), which
    # warns about the pandas version on every command; nothing here uses that path.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # a command that hands everything after its name to another tool (`ewh build` to dbt)
    if argv[:1] and argv[0] in PASSTHROUGH and not {"-h", "--help"} & set(argv[1:]):
        args = parser.parse_args(argv[:1])
        args.passthrough = argv[1:]
    else:
        args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (OperationalError, OSError) as exc:
        print(f"ewh {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - any other failure is operational too; say what broke
        print(f"ewh {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
