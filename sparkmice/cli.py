"""The `sparkmice` command: impute, impute-new, pool, report, complete, check-congeniality.

Every subcommand ends the same way on an error (`error_exit`): one line
`sparkmice <cmd>: error: ...` on stderr and exit code 2; a traceback only with `--debug`.
sparkmice's own warnings (a renamed option) are one line `sparkmice <cmd>: warning: ...`.
The spark-submit entries in jobs/ call `main` too."""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import warnings
from collections.abc import Callable

# command -> (module with add_arguments and run, help); imported when the command runs
COMMANDS = {
    "impute": ("sparkmice.impute_job", "impute an incomplete table by chained equations"),
    "impute-new": (
        "sparkmice.impute_new_job",
        "impute new rows with a finished run's models, without refitting",
    ),
    "pool": (
        "sparkmice.pooling.job",
        "fit a model on every imputation and pool by Rubin's rules",
    ),
    "report": ("sparkmice.diagnostics.job", "write an HTML report of an imputed run"),
    "complete": (
        "sparkmice.complete_job",
        "write a run's completed data in one of R's complete() shapes",
    ),
    "check-congeniality": (
        "sparkmice.congeniality_job",
        "say which terms of an analysis formula the imputation models leave out",
    ),
}
ERROR_EXIT = 2

Run = Callable[[argparse.Namespace], int]


def error_exit(command: str, *bad_input: type[Exception]) -> Callable[[Run], Run]:
    """Decorate a command's `run`: the project's errors (ConfigError, InputError,
    OutputExistsError, PathError, ChainCommitError) and the command's own bad-input errors
    (`bad_input`) print their message as one line; any other exception prints one line
    saying it is internal. Both return exit code 2; with `args.debug` the exception
    propagates (full traceback)."""

    def decorate(run: Run) -> Run:
        @functools.wraps(run)
        def wrapper(args: argparse.Namespace) -> int:
            from sparkmice.api import OutputExistsError
            from sparkmice.config import ConfigError
            from sparkmice.io.paths import PathError
            from sparkmice.io.run import ChainCommitError
            from sparkmice.plan import InputError

            project = (ConfigError, InputError, OutputExistsError, PathError, ChainCommitError)

            try:
                with warnings.catch_warnings():
                    warnings.showwarning = _one_line_warnings(command, warnings.showwarning)
                    return run(args)
            except Exception as error:
                if getattr(args, "debug", False):
                    raise
                if isinstance(error, (*project, *bad_input)):
                    line = " ".join(str(error).split()) or type(error).__name__
                else:
                    first = (str(error).strip().splitlines() or [""])[0]
                    line = (
                        f"internal error ({type(error).__name__}: {first}); rerun with "
                        f"--debug for the traceback, and please report it"
                    )
                print(f"sparkmice {command}: error: {line}", file=sys.stderr)
                return ERROR_EXIT

        return wrapper

    return decorate


def _one_line_warnings(command: str, show: Callable) -> Callable:
    """A `warnings.showwarning` that prints sparkmice's renamed-option warnings as one
    line and leaves every other warning to `show`."""
    from sparkmice.config import RenamedOptionWarning

    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, RenamedOptionWarning):
            print(f"sparkmice {command}: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sparkmice", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        modules[name] = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        modules[name].add_arguments(command)
        command.add_argument(
            "--debug", action="store_true", help="on an error, show the full traceback"
        )
    args = parser.parse_args(argv)
    return modules[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
