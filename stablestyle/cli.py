"""Command line: ``stablestyle <command> ...``.

Each command lives in :mod:`stablestyle.commands` as a module with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; heavy imports happen inside
``run`` so ``--help`` stays fast.  :func:`main` is the single entry point that
tests call directly.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from . import __version__
from .errors import Terminated, UserError

# command name -> module; a command appears only if its module exists.
COMMANDS: dict[str, str] = {
    "stylize": "stablestyle.commands.stylize",
    "train": "stablestyle.commands.train",
    "evaluate": "stablestyle.commands.evaluate",
    "analyze-style": "stablestyle.commands.analyze_style",
    "make-clip": "stablestyle.commands.make_clip",
    "models": "stablestyle.commands.models",
    "export": "stablestyle.commands.export",
    "webcam": "stablestyle.commands.webcam",
    "demo": "stablestyle.commands.demo",
    "app": "stablestyle.commands.app",
}


# OSError numbers that mean "the disk or the permissions", reported in one line.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
                       errno.EFBIG}
#: Signals that stop a command the way Ctrl-C does (temporary outputs removed, exit status 128 + signal).
TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminating_signals_interrupt() -> Iterator[None]:
    """While inside, SIGTERM / SIGHUP raise :class:`~stablestyle.errors.Terminated` in the main thread.

    Without this Python dies at once on them and every ``finally`` that removes a temporary output is
    skipped.  Outside the main thread (where handlers cannot be set) this does nothing.
    """
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in TERMINATING_SIGNALS:
            previous[sig] = signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def environment_error_line(exc: OSError) -> str:
    """The one-line message for a disk / permission ``OSError``, naming the output, never its temporary name."""
    from .atomic import final_name

    where = f"{final_name(exc.filename)}: " if exc.filename else ""
    return f"error: {where}{exc.strerror or exc} (free space or fix permissions, then run again)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stablestyle",
        description="Flicker-free neural style transfer for video (Gupta et al., ICCV 2017).",
    )
    parser.add_argument("--version", action="version", version=f"stablestyle {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        # also after the command (`stablestyle stylize ... -v`); SUPPRESS keeps the top-level value when absent
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug messages")
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 disk full / no permission / out of memory, 2 user error,
    130 interrupted, 128 + signal for SIGTERM / SIGHUP)."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args._argv = argv  # the command line, for reports' provenance
    # --quiet (on the commands that have it) silences progress bars and the informational log lines;
    # warnings still show.  --verbose wins.
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        with terminating_signals_interrupt():
            return int(args._run(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Terminated as exc:
        print(f"terminated by signal {exc.signum}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # after BrokenPipeError (an OSError too): the disk or permissions, not a bug
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            raise
        print(environment_error_line(exc), file=sys.stderr)
        return 1
    except MemoryError:  # torch.OutOfMemoryError (a RuntimeError) is handled by its commands' device logic
        print("error: out of memory; use smaller inputs (--max-size) or a smaller model", file=sys.stderr)
        return 1

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
