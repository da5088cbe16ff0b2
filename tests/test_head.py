"""The convex head: standardised features, L-BFGS, weight decay chosen on validation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.head import WEIGHT_DECAYS, LinearHead, Standardiser, choose_weight_decay

CLASSES, FEATURES = 3, 40


def blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Linearly separable classes whose features have very different scales (as pooled CNN features do)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % CLASSES
    centres = torch.randn(CLASSES, FEATURES, generator=torch.Generator().manual_seed(0)) * 3
    features = centres[labels] + torch.randn(n, FEATURES, generator=generator)
    scales = torch.logspace(-2, 2, FEATURES)
    return features * scales, labels


def sgd_head(x: torch.Tensor, y: torch.Tensor, epochs: int = 30) -> nn.Linear:
    """What the SGD path does with cached features: a Linear layer, SGD with momentum, batches of 64."""
    torch.manual_seed(0)
    head = nn.Linear(FEATURES, CLASSES)
    optimiser = torch.optim.SGD(head.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for index in torch.randperm(len(y), generator=generator).split(64):
            optimiser.zero_grad()
            F.cross_entropy(head(x[index]), y[index]).backward()
            optimiser.step()
    return head


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(1) == labels).float().mean().item()


def test_convex_head_reaches_at_least_the_sgd_heads_accuracy():
    (train, train_y), (val, val_y), (test, test_y) = blobs(300, 1), blobs(150, 2), blobs(300, 3)
    standardiser = Standardiser.fit(train)
    weight_decay, scores = choose_weight_decay(standardiser(train), train_y, standardiser(val), val_y, CLASSES)
    assert set(scores) == set(WEIGHT_DECAYS) and scores[weight_decay] == max(scores.values())
    head = LinearHead(FEATURES, CLASSES, weight_decay)
    head.fit(standardiser(train), train_y, 100)
    linear = nn.Linear(FEATURES, CLASSES)
    head.write_into(linear, standardiser)
    sgd = sgd_head(train, train_y)
    with torch.no_grad():
        convex, sgd = accuracy(linear(test), test_y), accuracy(sgd(test), test_y)
    assert convex >= sgd
    assert convex > 0.95  # the blobs are separable


def test_written_head_predicts_from_raw_features_what_the_solution_does_on_standardised_ones():
    features, labels = blobs(90, 4)
    standardiser = Standardiser.fit(features)
    head = LinearHead(FEATURES, CLASSES, 1e-2)
    head.fit(standardiser(features), labels, 20)
    linear = nn.Linear(FEATURES, CLASSES)
    head.write_into(linear, standardiser)
    with torch.no_grad():
        torch.testing.assert_close(linear(features), head.logits(standardiser(features)), atol=1e-4, rtol=1e-4)


def test_lbfgs_minimises_the_penalised_objective():
    features, labels = blobs(120, 5)
    z = Standardiser.fit(features)(features)
    head = LinearHead(FEATURES, CLASSES, 0.1)
    start = head.objective(z, labels).item()
    head.fit(z, labels, 50)
    loss = head.objective(z, labels)
    loss.backward()
    assert loss.item() < start
    assert head.weight.grad.abs().max() < 1e-3  # at the optimum of a strictly convex problem
