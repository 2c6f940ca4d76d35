"""Errors that name the bad input, so users never see a traceback from deep inside torch or pandas."""


class TaxDistillError(ValueError):
    """Base class: something about the user's input or request is wrong."""


class InputError(TaxDistillError):
    """An input file or table is malformed or inconsistent with another input."""


class ModelLoadError(TaxDistillError):
    """A teacher or student model cannot be found or loaded."""


class TaxDistillWarning(UserWarning):
    """Part of the input was ignored or kept as it came: the run goes on, the user is told."""


def preview(ids, limit=5):
    """Render the first few offending IDs for an error message: 'a, b, c (and 12 more)'."""
    ids = list(ids)
    shown = ", ".join(repr(str(i)) for i in ids[:limit])
    if len(ids) > limit:
        shown += f" (and {len(ids) - limit} more)"
    return shown
