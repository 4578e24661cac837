"""The one error type the course raises for bad input.

`CourseInputError` is a `ValueError`, so library callers can catch it the usual way;
the command line (`course_lib.cli`) prints its message without a traceback.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations


class CourseInputError(ValueError):
    """Bad input from the learner: a file, flag or value, and what would be valid."""
