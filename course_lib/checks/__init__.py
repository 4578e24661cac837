"""Exercise checkers, one submodule per notebook, all re-exported here.

Use them as ``course_lib.checks.check_<name>(your_function)``. Each runs fixed cases that
catch the classic mistakes, then random ones, and prints one line: "not done yet" for an
unfinished stub, a failure with the input and a hint (a nudge first, a stronger hint after
a second failure), or a pass. It never raises inside the notebook and returns a callable
`CheckResult` that falls back to the reference when the exercise is unfinished or wrong,
so the notebook always runs to the end. ``solution("name")`` shows the reference,
``last_failure("name")`` gives back the input that failed.

Introduced in notebooks/00_welcome.ipynb.
"""

from ._core import Case as Case
from ._core import CheckResult as CheckResult
from ._core import Exercise as Exercise
from ._core import Failure as Failure
from ._core import check_function as check_function
from ._core import check_value as check_value
from ._core import last_failure as last_failure
from ._core import reset_attempts as reset_attempts
from ._core import solution as solution
from ._core import values_equal as values_equal
from .beyond import *  # noqa: F403
from .data import *  # noqa: F403
from .decoding import *  # noqa: F403
from .finetuning import *  # noqa: F403
from .model import *  # noqa: F403
from .scaling import *  # noqa: F403
from .tokenization import *  # noqa: F403
from .training import *  # noqa: F403
from .visualization import *  # noqa: F403
from .welcome import *  # noqa: F403
