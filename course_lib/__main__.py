"""`python -m course_lib ...` is the same as the `course` command."""

from .cli import main

raise SystemExit(main())
