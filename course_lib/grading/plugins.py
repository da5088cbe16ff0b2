"""The preprocessors that nbgrader loads by import string from the generated config.

They change what nbgrader does at three points: which kernel manager runs student code
(the sandbox), how a test cell with warnings on stderr is scored, and what feedback shows.
:func:`course_lib.grading.course.nbgrader_config` names them; keep the names in step.
"""

from __future__ import annotations

from typing import Any

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from traitlets import Unicode

from course_lib.grading.assignment import HIDDEN_BEGIN, HIDDEN_END, failing_line, hidden_line_numbers
from course_lib.grading.course import PLAIN

__all__ = ["GradingExecute", "HideTestsInFeedback", "KeepStderrFromFailing"]


def _is_graded_code(cell: Any) -> bool:
    return cell.cell_type == "code" and bool(cell.metadata.get("nbgrader", {}).get("grade"))


class GradingExecute(Execute):
    """nbgrader's Execute with the kernel manager taken from the config.

    nbgrader's Execute passes ``kernel_manager_class`` as a constructor argument, which
    overrides ``c.Execute.kernel_manager_class``; this class reads ``kernel_manager``
    (an import string) instead, so the generated config chooses the sandbox.
    """

    kernel_manager = Unicode(PLAIN, help="Import string of the kernel manager class.").tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from traitlets.utils.importstring import import_item

        self.kernel_manager_class = import_item(self.kernel_manager)


class KeepStderrFromFailing(NbGraderPreprocessor):
    """Correct code that warns keeps its points: stderr text in a test cell becomes stdout.

    nbgrader gives 0 points to a test cell with any stderr output, so a library's
    deprecation warning would fail a right answer. Errors (exceptions) still fail.
    """

    def preprocess_cell(self, cell: Any, resources: dict, index: int) -> tuple[Any, dict]:
        """Relabel the cell's stderr streams as stdout, each line marked ``[stderr]``."""
        if _is_graded_code(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
                    output["text"] = "".join(f"[stderr] {line}\n" for line in output["text"].splitlines())
        return cell, resources


class HideTestsInFeedback(NbGraderPreprocessor):
    """Feedback shows neither hidden tests nor anything they print or quote.

    Hidden regions are cut from the cell sources; a test cell with hidden tests shows none
    of its printed output (a hidden test, or the student's code it calls, could print the
    hidden inputs), and an error in a test cell is shown as its one-line message (the
    checks' messages say what to fix). An error raised by a hidden test says so, since the
    call its message describes is not in the cell the student sees.
    """

    NOTE = "[printed output not shown: this cell has hidden tests]\n"
    FROM_HIDDEN = "(this failure comes from a hidden test of this cell: its code is not shown)"

    def preprocess_cell(self, cell: Any, resources: dict, index: int) -> tuple[Any, dict]:
        """Cut the hidden region from a test cell and keep only the outputs that are safe to show."""
        if _is_graded_code(cell):
            had_hidden = HIDDEN_BEGIN in cell.source
            hidden = hidden_line_numbers(cell.source)
            remover = ClearHiddenTests(
                enforce_metadata=False, begin_test_delimeter=HIDDEN_BEGIN, end_test_delimeter=HIDDEN_END
            )
            remover._remove_hidden_test_region(cell)
            shown = []
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    from_hidden = failing_line(output, cell.get("execution_count")) in hidden
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
                    if from_hidden:
                        output["traceback"].append(self.FROM_HIDDEN)
                    shown.append(output)
                elif not had_hidden:
                    shown.append(output)
            if len(shown) < len(cell.get("outputs", [])):
                shown.insert(0, nbformat.v4.new_output("stream", name="stdout", text=self.NOTE))
            cell.outputs = shown
        return cell, resources
