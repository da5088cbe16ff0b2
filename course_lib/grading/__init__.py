"""The instructor's grading tool around nbgrader: one command from submissions to grades.

``python -m course_lib.grading ASSIGNMENT SUBMISSIONS --out DIR`` (alias ``course-grade``)

1. keeps a course directory (``DIR`` or ``--course``) with its ``nbgrader_config.py`` and
   sqlite gradebook, and releases ``solutions/ASSIGNMENT`` into it (``generate_assignment``), in
   the class's language (``--language``: English, or the Spanish made from the catalogs);
2. collects the submissions: nbgrader's layout ``<student>/<ASSIGNMENT>/<nb>.ipynb``, one
   folder per student ``<student>/<nb>.ipynb``, or a flat folder or zip of
   ``<student>_<nb>.ipynb`` files (``--pattern``), and registers the students;
3. checks each notebook before grading (valid JSON, expected name, test cells intact) and
   copies only the expected notebooks into ``submitted/``;
4. autogrades each student in its own ``nbgrader autograde --student`` process, the kernel
   in the sandbox of :mod:`course_lib.grading.sandbox`, so one bad submission cannot stop the batch;
5. brings every output up to date with the gradebook (also alone, without SUBMISSIONS, after
   manual grading): late penalties, feedback HTML without hidden tests (written again when what
   it shows changed, checked after writing), ``grades.csv``, ``questions.csv``, ``report.html``
   and ``report.csv``, ``canvas.csv`` and ``moodle.csv``, ``similarity.html``, and adds what
   changed to ``grade-changes.csv``.

Which module holds what:

- ``cli``: the command, its options (``GradeConfig``) and ``main``;
- ``pipeline``: ``grade``, the batch and one student's grading;
- ``backends``: where the students are graded: ``local`` (threads, ``--jobs``) or ``slurm``;
- ``slurm``: the Slurm backend: one job array, results merged into the course by one writer;
- ``slurm_task``: one array task, grading one student on its node;
- ``outputs``: everything written after grading, in order, and what later runs keep;
- ``assignment``: the source notebooks, their graded cells and hidden-test markers;
- ``submissions``: collecting students' files from folders and zips, the roster;
- ``notebooks``: what is wrong with a submitted notebook, and the repairs;
- ``course``: the nbgrader course directory, its config and the nbgrader runs;
- ``plugins``: the preprocessors nbgrader loads from the generated config;
- ``results``: the per-student reports, the class's results (pending, held, penalties),
  ``grades.csv`` and ``questions.csv``;
- ``late``: the late policy, extensions, submission times and the penalty;
- ``feedback``: feedback pages kept current (gradebook penalties, notes, digests) and the leak check;
- ``class_report``: per-question statistics, most-failed checks, grading times;
- ``changes``: ``grade-changes.csv``, the record of every change of a grade;
- ``lms``: ``canvas.csv`` and ``moodle.csv``;
- ``similarity``: pairs of alike submissions, with copydetect;
- ``pages``: the HTML pages' templates (``templates/``) and inline plots;
- ``releases``: the student releases of ``solutions/`` in ``exercises/`` (and ``exercises/es/``);
- ``translations``: the assignments in other languages: catalogs of the source's prose, translated sources;
- ``sandbox``: the bubblewrap kernel manager that runs student code;
- ``audit``: reading answer code for constructs that can fool the tests.

The course library never imports this package: nbgrader is the optional extra ``grading``.
This file imports nothing heavy, so that ``--help`` and the error type cost nothing.
"""

from course_lib.errors import CourseError

__all__ = ["GradingError"]


class GradingError(CourseError):
    """The grading command cannot run as asked (assignment, paths, options)."""
