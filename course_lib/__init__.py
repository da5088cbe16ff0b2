"""course_lib: residual networks and transfer learning on product photos.

One module per idea: ``conv`` (convolution from scratch), ``models`` (the hand-written
ResNet-18), ``weights`` (where pretrained weights come from), ``regimes`` (fresh /
finetune / feature_extraction), ``data`` (product photos as tensors), ``history`` (what a
run records), ``runtime`` (device, precision, seeds), ``evaluation``, ``train`` (the
training loop), ``pretrain``, ``experiment``, ``plots`` and ``checks``. The instructor's
grading tool is the separate package ``course_lib.grading``; nothing here imports it.
"""

from pathlib import Path

from course_lib.errors import CourseError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REGIMES = ("fresh", "finetune", "feature_extraction")
# The course's yardstick: the first time validation accuracy reaches 90 % (History.time_to).
TARGET_ACCURACY = 0.90

__all__ = ["CourseError", "PROJECT_ROOT", "REGIMES", "TARGET_ACCURACY"]
