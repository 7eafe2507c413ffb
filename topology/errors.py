"""The project's one base error.

Everything osdn raises on purpose derives from `OsdnError`, so that a caller (the os-ken
shell, the `osdn` command, a test) can tell our diagnosed failures from bugs.  Each subclass
lives beside the code that raises it; where it also is a standard error (a `ValueError`, a
`KeyError`), it derives from both so that existing `except` clauses keep working."""


class OsdnError(Exception):
    """A failure osdn diagnosed: its message says what and where."""
