"""A linear head on frozen features, trained as the convex problem it is.

With the backbone frozen, every photo's features are fixed numbers, and training the head is
multinomial logistic regression: a convex problem with one best answer for each amount of
weight decay. Stochastic gradient descent with a learning rate made for a whole network
approaches that answer slowly and depends on its schedule; the classical recipe solves it
directly:

1. standardise each feature (zero mean, unit variance on the training photos), so that one
   weight decay suits every feature whatever its scale;
2. minimise the mean cross-entropy plus ``weight_decay / 2 * ||W||^2`` with L-BFGS on the whole
   training split (a quasi-Newton method: curvature from recent gradients, a line search
   instead of a learning rate);
3. choose the weight decay on the validation split, from a grid spanning five decades.

The solution is then written back into an ordinary ``nn.Linear`` on the raw features, so the
model predicts exactly as before: ``W z + b`` with ``z = (f - mean) / std`` is
``(W / std) f + (b - W mean / std)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WEIGHT_DECAYS", "LinearHead", "Standardiser", "choose_weight_decay"]

# The grid searched on the validation split (penalty weight_decay / 2 * ||W||^2 on standardised features).
WEIGHT_DECAYS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
SEARCH_ITERATIONS = 100  # L-BFGS iterations for each candidate: enough to converge on a few thousand photos


@dataclass
class Standardiser:
    """Per-feature mean and standard deviation of the training features."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, features: torch.Tensor) -> Standardiser:
        return cls(features.mean(0), features.std(0, unbiased=False).clamp_min(1e-6))

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std


class LinearHead:
    """Weights ``W``, ``b`` on standardised features, fitted by L-BFGS for one weight decay."""

    def __init__(self, num_features: int, num_classes: int, weight_decay: float, device: torch.device | str = "cpu"):
        self.weight = torch.zeros(num_classes, num_features, device=device, requires_grad=True)
        self.bias = torch.zeros(num_classes, device=device, requires_grad=True)
        self.weight_decay = weight_decay
        self.optimizer = torch.optim.LBFGS(
            [self.weight, self.bias],
            lr=1.0,
            max_iter=1,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.weight.T + self.bias

    def objective(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy plus the weight decay penalty (the bias is not penalised)."""
        return F.cross_entropy(self.logits(z), labels) + 0.5 * self.weight_decay * self.weight.pow(2).sum()

    def fit(self, z: torch.Tensor, labels: torch.Tensor, iterations: int) -> None:
        """``iterations`` more L-BFGS iterations on the whole of ``z`` (standardised features)."""
        self.optimizer.param_groups[0]["max_iter"] = iterations
        self.optimizer.param_groups[0]["max_eval"] = iterations * 5 // 4

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad()
            loss = self.objective(z, labels)
            loss.backward()
            return loss

        self.optimizer.step(closure)

    def write_into(self, linear: nn.Linear, standardiser: Standardiser) -> None:
        """Set ``linear`` (on raw features) to compute exactly these logits."""
        with torch.no_grad():
            weight = self.weight / standardiser.std
            linear.weight.copy_(weight)
            linear.bias.copy_(self.bias - weight @ standardiser.mean)


def choose_weight_decay(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    val: torch.Tensor,
    val_labels: torch.Tensor,
    num_classes: int,
    candidates: tuple[float, ...] = WEIGHT_DECAYS,
) -> tuple[float, dict[float, float]]:
    """The weight decay whose solution scores best on the validation split (ties: the larger,
    the simpler head), and every candidate's validation accuracy. Features are standardised."""
    scores: dict[float, tuple[float, float]] = {}
    for weight_decay in candidates:
        head = LinearHead(train.shape[1], num_classes, weight_decay, train.device)
        head.fit(train, train_labels, SEARCH_ITERATIONS)
        with torch.no_grad():
            logits = head.logits(val)
            accuracy = (logits.argmax(1) == val_labels).float().mean().item()
            loss = F.cross_entropy(logits, val_labels).item()
        scores[weight_decay] = (accuracy, -loss)
    best = max(sorted(candidates, reverse=True), key=lambda wd: scores[wd])
    return best, {wd: score[0] for wd, score in scores.items()}
