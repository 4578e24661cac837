"""Exercise checkers, one submodule per notebook, all re-exported here.

Use them as ``course_lib.checks.check_<name>(your_function)``. Each prints a clear
pass or fail with a hint, never raises inside the notebook, and returns a callable
`CheckResult` that falls back to the reference when the exercise is unfinished or
wrong, so the notebook always runs to the end.

Introduced in notebooks/00_welcome.ipynb.
"""

from ._core import CheckResult as CheckResult
from ._core import check_function as check_function
from ._core import check_value as check_value
from ._core import values_equal as values_equal
from .data import *  # noqa: F403
from .decoding import *  # noqa: F403
from .finetuning import *  # noqa: F403
from .model import *  # noqa: F403
from .scaling import *  # noqa: F403
from .tokenization import *  # noqa: F403
from .training import *  # noqa: F403
from .visualization import *  # noqa: F403
from .welcome import *  # noqa: F403
