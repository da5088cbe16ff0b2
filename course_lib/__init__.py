"""course_lib: residual networks and transfer learning on product photos.

One module per idea: ``conv`` (convolution from scratch), ``models`` (the hand-written
ResNet-18), ``weights`` (where pretrained weights come from), ``regimes`` (fresh /
finetune / feature_extraction), ``data`` (product photos as tensors), ``train`` (the
training loop), ``pretrain``, ``experiment``, ``plots``, ``checks`` and ``grade``.
"""

from pathlib import Path

from course_lib.errors import CourseError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REGIMES = ("fresh", "finetune", "feature_extraction")

__all__ = ["CourseError", "PROJECT_ROOT", "REGIMES"]
