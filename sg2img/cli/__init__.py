"""The ``sg2img`` command: ``generate``, ``layout``, ``manipulate``, ``train``, ``evaluate``,
``serve`` and ``vocab``.

Each subcommand is a function taking the parsed arguments and returning an exit code. Heavy
modules (torch, the model) are imported inside them so that ``sg2img --help`` starts fast.
Library errors (``ValueError`` subclasses such as ``SceneGraphError``, ``VocabError``,
``CheckpointError``, ``ConfigError``) and file errors become one line on stderr and exit
status 2; ``--debug`` shows the traceback instead.

The package: ``parser`` (flags and help), ``commands`` (one function per subcommand) and here
``main``, which dispatches and turns exceptions into one line and an exit status.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from ..files import StoppedBySignal
from .commands import COMMANDS, train_command
from .parser import EXIT_INTERNAL, EXIT_USAGE, PROG, build_parser

__all__ = ["COMMANDS", "EXIT_INTERNAL", "EXIT_USAGE", "PROG", "build_parser", "is_user_error",
           "main", "one_line", "train_command"]

_MAX_MESSAGE = 1000


def one_line(e: BaseException) -> str:
    """The error as one bounded line; a full disk reads "disk full while writing FILE"."""
    import errno

    from ..files import DiskFullError

    if (isinstance(e, OSError) and not isinstance(e, DiskFullError)
            and e.errno in (errno.ENOSPC, errno.EDQUOT)):
        return f"disk full while writing {e.filename or 'a file'}"
    text = str(e)
    if "\nOriginal Traceback" in text:
        # Re-raised from a DataLoader worker: the message is a whole traceback; its last line
        # ("DatasetError: cannot read image ...") is the error.
        last = text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    msg = " ".join(text.split()) or type(e).__name__
    return msg if len(msg) <= _MAX_MESSAGE else msg[:_MAX_MESSAGE - 3] + "..."


def is_user_error(e: BaseException) -> bool:
    """Errors that mean bad input (not a bug): ValueErrors and file-system errors."""
    return isinstance(e, (ValueError, OSError))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sg2img`` command; returns the exit status.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        0 on success, 2 on bad input or usage, 1 on an unexpected internal error, 130 when
        interrupted, 128+N when stopped by signal N while writing output.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors: argparse has printed them
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
    debug = bool(getattr(args, "debug", False))
    if getattr(args, "verbose", False) or debug:
        logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(COMMANDS[args.command](args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except StoppedBySignal as e:
        # Output folders are written all or nothing: a signal while writing leaves none.
        done = ("the output was complete and is in place" if e.written else
                f"nothing written to {getattr(args, 'out', None) or 'the output folder'}")
        print(f"{PROG}: stopped by signal {e.signum}; {done}", file=sys.stderr)
        return 128 + e.signum
    except Exception as e:
        if debug:
            raise
        msg = one_line(e)
        if is_user_error(e):
            if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in msg:
                msg = f"{msg}: {e.filename}"
            print(f"{PROG}: error: {msg}", file=sys.stderr)
            return EXIT_USAGE
        print(f"{PROG}: internal error: {type(e).__name__}: {msg} (run with --debug for the "
              f"traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
