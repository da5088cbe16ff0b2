"""The instructor's grading tool around nbgrader: one command from submissions to grades.

``python -m course_lib.grading ASSIGNMENT SUBMISSIONS --out DIR`` (alias ``course-grade``)

1. keeps a course directory (``DIR`` or ``--course``) with its ``nbgrader_config.py`` and
   sqlite gradebook, and releases ``solutions/ASSIGNMENT`` into it (``generate_assignment``);
2. collects the submissions: nbgrader's layout ``<student>/<ASSIGNMENT>/<nb>.ipynb``, one
   folder per student ``<student>/<nb>.ipynb``, or a flat folder or zip of
   ``<student>_<nb>.ipynb`` files (``--pattern``), and registers the students;
3. checks each notebook before grading (valid JSON, expected name, test cells intact) and
   copies only the expected notebooks into ``submitted/``;
4. autogrades each student in its own ``nbgrader autograde --student`` process, the kernel
   in the sandbox of :mod:`course_lib.grading.sandbox`, so one bad submission cannot stop the batch;
5. writes feedback HTML without hidden tests (checked after writing), ``grades.csv`` and
   ``questions.csv``.

Which module holds what:

- ``cli``: the command, its options (``GradeConfig``) and ``main``;
- ``pipeline``: ``grade``, one student's grading, feedback and its leak check;
- ``assignment``: the source notebooks, their graded cells and hidden-test markers;
- ``submissions``: collecting students' files from folders and zips, the roster;
- ``notebooks``: what is wrong with a submitted notebook, and the repairs;
- ``course``: the nbgrader course directory, its config and the nbgrader runs;
- ``plugins``: the preprocessors nbgrader loads from the generated config;
- ``results``: the per-student reports, ``grades.csv`` and ``questions.csv``;
- ``releases``: the student releases of ``solutions/`` in ``exercises/``;
- ``sandbox``: the bubblewrap kernel manager that runs student code;
- ``audit``: reading answer code for constructs that can fool the tests.

The course library never imports this package: nbgrader is the optional extra ``grading``.
This file imports nothing heavy, so that ``--help`` and the error type cost nothing.
"""

from course_lib.errors import CourseError

__all__ = ["GradingError"]


class GradingError(CourseError):
    """The grading command cannot run as asked (assignment, paths, options)."""
