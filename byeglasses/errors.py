"""Errors that carry a message meant for the user (the CLI prints them without a traceback)."""


class ByeGlassesError(Exception):
    """A problem with the user's input or files; str(e) says what and which input."""


class InputError(ByeGlassesError):
    """One input (a file, an image, a folder) cannot be used; the batch may go on without it."""


class CheckpointError(ByeGlassesError):
    """A weights file is missing, corrupt, or does not fit the configuration."""


class SettingError(ByeGlassesError):
    """A setting out of range; `name` is the parameter, which a command line maps to its flag."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name} {problem}")
        self.name, self.problem = name, problem


def run_script(main, name: str) -> int:
    """Run `main()` (a `byeglasses` subcommand, a benchmark or a tool script) so that a
    ByeGlassesError or a failed read or write ends it with one line on stderr, `NAME: error: ...`,
    naming the input (or the flag of a SettingError) and the problem, not a traceback. Returns the exit status: `main`'s (0 for None), 2 for
    bad input, 1 for a failed read or write, 130 when interrupted."""
    import sys

    try:
        return int(main() or 0)
    except SettingError as e:  # the library names the parameter; the user typed a flag
        print(f"{name}: error: --{e.name.replace('_', '-')} {e.problem}", file=sys.stderr)
        return 2
    except ByeGlassesError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file that cannot be read or written: missing, permission, disk full
        where = f"{e.filename}: " if e.filename else ""
        print(f"{name}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
