"""Student pre-tuning: the teacher's soft labels (knowledge distillation) and the warm-up schedule."""
from __future__ import annotations

import math

import pytest
import torch

from quads_search.config import PretuneConfig, StudentConfig
from quads_search.config.convert import ConfigError
from quads_search.core.epochs import OptimSpec, make_optimizer, predict
from quads_search.core.losses import soft_cross_entropy
from quads_search.core.pretune import FitSettings, SoftTargets, fit_cross_entropy
from quads_search.core.models import build_model, dropout_set_to
from quads_search.data import FeatureData, FeatureSplit
from quads_search.sweep.space import load_sweep
from tests.conftest import SPACE

CLASSES, FRAMES = 4, 20


def test_soft_cross_entropy_is_t_squared_kl_and_vanishes_on_agreement():
    student, teacher = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.5]])
    p_t = torch.softmax(teacher / 3, 1)
    kl = (p_t * (p_t.log() - torch.log_softmax(student / 3, 1))).sum()
    assert soft_cross_entropy(student, teacher, 3.0).item() == pytest.approx(9 * kl.item(), rel=1e-5)
    assert soft_cross_entropy(teacher, teacher, 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_warmup_rises_linearly_then_follows_the_cosine_to_zero():
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer, scheduler = make_optimizer([weight], [], OptimSpec("sgd", 1.0, 1.0, warmup_steps=4), total_steps=14)
    lrs = []
    for _ in range(14):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[9] == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert lrs[-1] < 0.03


def _separable_data(n_per_class: int = 12) -> FeatureData:
    """Each class lights up its own band of mel bins: easy to learn for a tiny encoder."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(CLASSES).repeat_interleave(n_per_class)
    features = 0.1 * torch.randn(len(labels), 80, FRAMES, generator=generator)
    for i, label in enumerate(labels):
        features[i, 20 * label:20 * label + 20] += 1.0
    split = FeatureSplit(features, labels, ["s"] * len(labels))
    return FeatureData(split, split, split, [f"intent{k}" for k in range(CLASSES)], "separable")


@pytest.mark.parametrize("kd", [0.0, 1.0])
def test_a_student_learns_the_teachers_soft_labels_in_proportion_to_kd(kd):
    data = _separable_data()
    shifted = (data.train.labels + 1) % CLASSES  # a teacher that disagrees with every label
    soft = SoftTargets(8.0 * torch.nn.functional.one_hot(shifted, CLASSES).float(), "shifted")
    cfg = StudentConfig(d_model=16, layers=1, heads=2, ffn=32)
    torch.manual_seed(0)
    model = build_model(cfg, CLASSES, FRAMES)
    pretune = PretuneConfig(epochs=12, lr=3e-3, head_lr=3e-3, kd=kd, warmup=1)
    fit = FitSettings(seed=0, batch_size=8, eval_batch_size=128, augment=False, device=torch.device("cpu"))
    fit_cross_entropy(model, data, pretune, fit, "student", soft_targets=soft)
    predicted = predict(model, data.train, 64, torch.device("cpu"))
    followed = shifted if kd else data.train.labels
    assert (predicted == followed).double().mean() > 0.9


def test_kd_is_refused_for_the_teacher_and_for_a_frozen_encoder():
    with pytest.raises(ConfigError, match=r"teacher.pretune.kd \(line \d+\): must be 0"):
        load_sweep(SPACE, ["teacher.pretune.kd=0.5", "teacher.pretune.train=all"])
    with pytest.raises(ConfigError, match=r"student.pretune.kd \(line \d+\): must be in \[0, 1\], got 2"):
        load_sweep(SPACE, ["student.pretune.kd=2"])
    with pytest.raises(ConfigError, match=r"student.pretune.kd \(line \d+\): needs train: all"):
        load_sweep(SPACE, ["student.pretune.kd=0.5", "student.pretune.train=head"])


def test_pretune_dropout_acts_only_while_pre_tuning():
    data = _separable_data()
    x = data.train.features[:8]
    torch.manual_seed(0)
    model = build_model(StudentConfig(d_model=16, layers=1, heads=2, ffn=32), CLASSES, FRAMES).train()
    with dropout_set_to(model, 0.5):
        assert not torch.equal(model(x)[0], model(x)[0])
    assert torch.equal(model(x)[0], model(x)[0])  # still in train mode: the model's own dropout, 0, again
    fit = FitSettings(seed=0, batch_size=8, eval_batch_size=128, augment=False, device=torch.device("cpu"))
    losses = {}
    for p in (None, 0.3):
        torch.manual_seed(0)
        model = build_model(StudentConfig(d_model=16, layers=1, heads=2, ffn=32), CLASSES, FRAMES)
        record = fit_cross_entropy(model, data, PretuneConfig(epochs=2, lr=3e-3, head_lr=3e-3, dropout=p), fit, "s")
        losses[p] = [h["loss"] for h in record["history"]]
        assert {layer.dropout for layer in [model.encoder, *model.encoder.layers]} == {0.0}
    assert losses[0.3] != losses[None]


def test_pretune_dropout_is_a_probability_and_needs_a_trained_encoder():
    with pytest.raises(ConfigError, match=r"student.pretune.dropout \(line \d+\): must be in \[0, 1\) or null, got 1"):
        load_sweep(SPACE, ["student.pretune.dropout=1"])
    with pytest.raises(ConfigError, match=r"student.pretune.dropout \(line \d+\): needs train: all"):
        load_sweep(SPACE, ["student.pretune.dropout=0.1", "student.pretune.train=head"])
