"""Schedules and loss weights: the paper's formula and the authors' variant as configuration."""
import pytest
import torch

from quads_search.config import CycleSchedule, LossWeights, StageConfig, TrainingConfig
from quads_search.core.losses import combine, l1_distill
from quads_search.core.schedule import resolve_schedule, stage_loss


def test_authors_schedule_and_loss_are_expressible_as_configuration():
    stages = resolve_schedule(TrainingConfig(schedule="authors", loss="authors"))
    kinds = [s.stage for s in stages for _ in range(s.epochs)]
    assert len(kinds) == 20
    distill_epochs = [i + 1 for i, kind in enumerate(kinds) if kind == "distill"]
    assert distill_epochs == [1, 2, 3, 7, 8, 9, 10, 11, 12]
    assert kinds[-1] == "quantize"
    distill = stages[1]
    assert (distill.optimizer, distill.lr, distill.head_lr) == ("adam", 1e-5, 1e-3)
    assert distill.loss == LossWeights(l1=1e-6, ce=1.0, centroid=0.0)
    quantize = stages[2]
    assert (quantize.optimizer, quantize.lr, quantize.momentum, quantize.cosine) == ("sgd", 0.01, 0.9, True)
    assert quantize.loss == LossWeights(l1=0.0, ce=1.0, centroid=0.0)


def test_authors_cluster_once_before_epoch_one_and_authors_recluster_at_every_quantize_stage():
    once = resolve_schedule(TrainingConfig(schedule="authors"))
    assert [(s.stage, s.epochs, s.cluster) for s in once if s.stage == "quantize"] == \
        [("quantize", 0, True), ("quantize", 3, False), ("quantize", 8, False)]
    assert once[0].stage == "quantize"  # the snapped pre-tuned student is what distillation starts from
    again = resolve_schedule(TrainingConfig(schedule="authors_recluster"))
    assert [s.cluster for s in again if s.stage == "quantize"] == [True, True]
    assert [(s.stage, s.epochs) for s in again] == [(s.stage, s.epochs) for s in once[1:]]


def test_cluster_is_checked_against_the_stage_kind_and_the_first_quantized_stage():
    assert ("cluster", "applies to quantize and joint stages only, not to a distill stage") in \
        StageConfig("distill", 1, cluster=True).problems()
    first_keeps = TrainingConfig(schedule=[StageConfig("distill", 1), StageConfig("joint", 1, cluster=False)])
    assert [key for key, _ in first_keeps.problems()] == ["schedule.1.cluster"]
    later_keeps = TrainingConfig(schedule=[StageConfig("quantize", 1), StageConfig("quantize", 1, cluster=False)])
    assert later_keeps.problems() == []


@pytest.mark.parametrize("alpha, gamma", [(0.3, 0.6), (0.0, 1.0), (1.0, 0.0)])
def test_paper_loss_weights_expand_the_formula(alpha, gamma):
    w = stage_loss("quantize", TrainingConfig(alpha=alpha, gamma=gamma))
    l1, ce, centroid = torch.tensor(2.0), torch.tensor(3.0), torch.tensor(5.0)
    l_dis = alpha * l1 + (1 - alpha) * ce
    l_quant = centroid + ce
    expected = gamma * l_dis + (1 - gamma) * l_quant
    assert torch.isclose(combine(w, l1=l1, ce=ce, centroid=centroid), expected)


@pytest.mark.parametrize("kd", [0.0, 0.25, 1.0])
def test_kd_shares_l_gt_between_labels_and_the_teachers_soft_labels(kd):
    w = stage_loss("quantize", TrainingConfig(alpha=0.3, gamma=0.6, kd=kd))
    l1, ce, centroid, soft = torch.tensor(2.0), torch.tensor(3.0), torch.tensor(5.0), torch.tensor(7.0)
    l_gt = (1 - kd) * ce + kd * soft
    expected = 0.6 * (0.3 * l1 + 0.7 * l_gt) + 0.4 * (centroid + l_gt)
    assert torch.isclose(combine(w, l1=l1, ce=ce, centroid=centroid, kd=soft), expected)


def test_cycles_and_explicit_stages_resolve_with_defaults():
    stages = resolve_schedule(TrainingConfig(schedule=CycleSchedule(cycles=3, distill=1, quantize=2, joint=1)))
    assert [s.stage for s in stages] == ["distill", "joint", "quantize"] * 3
    custom = resolve_schedule(TrainingConfig(schedule=[StageConfig("quantize", 0, lr=0.5)], alpha=0.5, gamma=0.5))
    assert custom[0].lr == 0.5 and custom[0].optimizer == "sgd"
    assert custom[0].loss == LossWeights(l1=0.25, ce=0.75, centroid=0.5)  # α = γ = 0.5: γα, γ(1−α) + 1−γ, 1−γ


def test_l1_is_the_per_example_l1_norm_averaged_over_the_batch():
    teacher = torch.tensor([[1.0, -1.0], [0.0, 0.0]])
    student = torch.tensor([[0.0, 0.0], [0.5, 0.5]])
    assert l1_distill(student, teacher).item() == pytest.approx((2.0 + 1.0) / 2)
