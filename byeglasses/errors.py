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
