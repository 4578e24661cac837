"""Exercise checkers: `_core` is the mechanism, then one submodule per notebook, all re-exported here.

Use them as ``course_lib.checks.check_<name>(your_function)`` (or your class, for a class
piece). Each runs fixed cases (unusual inputs), then random ones, and prints one message:
"not done yet" for an unfinished stub, a failure with the input and a hint (a nudge first,
a stronger hint after a second failure), or a pass. It never raises inside the notebook and
returns a `CheckResult`; ``choose(result, yours, reference)`` then picks what the notebook goes
on with and says which in one line. ``solution("name")`` shows the reference,
``last_failure("name")`` gives back the input that failed. A concept question is answered
with ``answer("name", "b")`` (the letter of your choice).

Which module serves which notebook: nb00_welcome, nb01_tokenization, nb02_data,
nb03_attention, nb04_block, nb05_gpt2, nb06_training, nb07_decoding, nb08_visualization,
nb09_finetuning, nb10_scaling, nb11_beyond, a1_command_line.

Introduced in notebooks/00_welcome.ipynb.
"""

from ._core import Build as Build
from ._core import Case as Case
from ._core import CheckResult as CheckResult
from ._core import Exercise as Exercise
from ._core import Failure as Failure
from ._core import Mistake as Mistake
from ._core import ModuleExercise as ModuleExercise
from ._core import Question as Question
from ._core import answer as answer
from ._core import choose as choose
from ._core import last_failure as last_failure
from ._core import reset_attempts as reset_attempts
from ._core import solution as solution
from ._core import values_equal as values_equal
from .a1_command_line import *  # noqa: F403
from .nb00_welcome import *  # noqa: F403
from .nb01_tokenization import *  # noqa: F403
from .nb02_data import *  # noqa: F403
from .nb03_attention import *  # noqa: F403
from .nb04_block import *  # noqa: F403
from .nb05_gpt2 import *  # noqa: F403
from .nb06_training import *  # noqa: F403
from .nb07_decoding import *  # noqa: F403
from .nb08_visualization import *  # noqa: F403
from .nb09_finetuning import *  # noqa: F403
from .nb10_scaling import *  # noqa: F403
from .nb11_beyond import *  # noqa: F403

MODULES = ("nb00_welcome", "nb01_tokenization", "nb02_data", "nb03_attention", "nb04_block", "nb05_gpt2",
           "nb06_training", "nb07_decoding", "nb08_visualization", "nb09_finetuning", "nb10_scaling",
           "nb11_beyond", "a1_command_line")
"""The check modules in course order; module nbNN_* serves notebooks/NN_*.ipynb, a1_* the appendix A1."""
