import pytest
import torch

from quads_search.quant import (
    CodebookQuantizer,
    calibrate,
    kmeans_1d,
    quantizable_weights,
)
from quads_search.quant.latent import original
from quads_search.quant.packed import affine_levels
from quads_search.quant.sorted1d import SortedValues


def naive_means(weight, labels, clusters):
    flat, labels = weight.detach().flatten(), labels.flatten()
    return [flat[labels == k].mean() for k in range(clusters) if (labels == k).any()]


def test_mean_step_sets_centroids_to_cluster_means(student, drift):
    weights = quantizable_weights(student)
    q = CodebookQuantizer(student, {"head.weight": 3, "encoder.conv1.weight": 2})
    q.fit()
    q.begin()
    drift(weights, scale=1e-2)
    expected = {n: naive_means(weights[n], q.grids[n].labels, 2 ** q.bits[n]) for n in q.low}
    q.step()
    for name, grid in q.grids.items():
        used = grid.counts > 0
        assert torch.allclose(grid.codebook[used], torch.stack(expected[name]), rtol=1e-5, atol=1e-8)
        assert torch.equal(weights[name], grid.codebook[grid.labels].view_as(weights[name]))


def test_mean_keeps_labels_fixed_across_steps(student, drift):
    weights = quantizable_weights(student)
    q = CodebookQuantizer(student, dict.fromkeys(weights, 4))
    q.fit()
    labels = {n: g.labels.clone() for n, g in q.grids.items()}
    q.begin()
    for seed in range(3):
        drift(weights, scale=5e-2, seed=seed)  # large enough to cross cluster midpoints
        q.step()
    assert all(torch.equal(labels[n], g.labels) for n, g in q.grids.items())


def test_gradient_codebook_gradient_is_the_scatter_sum_of_its_members_gradients():
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 6, bias=False)
    x = torch.randn(5, 8)
    q = CodebookQuantizer(layer, {"weight": 2}, update="gradient")
    q.fit()
    q.begin()
    plain = layer.weight.detach().clone().requires_grad_()  # the same values as a free tensor
    (torch.nn.functional.linear(x, plain).square().sum()).backward()
    layer(x).square().sum().backward()
    labels = q.grids["weight"].labels.flatten()
    expected = torch.zeros(4).index_add_(0, labels, plain.grad.flatten())
    assert torch.allclose(original(layer, "weight").grad, expected, atol=1e-6)


def test_gradient_codebook_moves_under_training_and_stays_the_weight(student, features, train):
    q = CodebookQuantizer(student, dict.fromkeys(quantizable_weights(student), 2), update="gradient")
    q.fit()
    q.begin()
    start = {n: original(student, n).detach().clone() for n in q.low}
    train(student, q, features, steps=2)
    moved = [n for n in q.low if not torch.equal(original(student, n), start[n])]
    assert len(moved) == len(q.low)
    q.end()
    for name, grid in q.grids.items():  # the trained codebook is kept and is what the weights hold
        assert not torch.equal(grid.codebook, start[name])
        assert torch.equal(q.weight(name), grid.codebook[grid.labels].view_as(q.weight(name)))


def test_ste_reassigns_labels_every_n_steps_to_the_nearest_centroid(student):
    name = "encoder.layers.0.fc1.weight"
    q = CodebookQuantizer(student, {name: 3}, update="ste", recluster_every=3)
    q.fit()
    q.begin()
    grid, weight = q.grids[name], original(student, name)
    labels = grid.labels.clone()
    with torch.no_grad():
        weight.add_(torch.randn_like(weight) * weight.std())  # many weights cross a midpoint
    for _ in range(2):
        q.step()
        assert torch.equal(grid.labels, labels)
    codebook = grid.codebook.clone()  # step 3 re-assigns to these, then moves them to the new means
    q.step()
    nearest = (weight.detach().reshape(-1, 1) - codebook).abs().argmin(1)
    changed = (grid.labels.flatten() != labels.flatten()).double().mean()
    assert changed > 0.2 and (grid.labels.flatten() == nearest).double().mean() > 0.999


def test_ste_latent_keeps_small_updates_and_centroid_loss_pulls_it_to_its_centroids(student):
    name = "encoder.layers.0.fc1.weight"
    q = CodebookQuantizer(student, {name: 2}, update="ste")
    q.fit()
    q.begin()
    weight = original(student, name)
    quantized = q.weight(name).clone()
    with torch.no_grad():
        weight.add_(1e-4)  # far below half the distance between centroids
    assert torch.equal(q.weight(name), quantized) and not torch.equal(weight, quantized)
    loss = q.centroid_loss()
    assert loss.item() > 0
    loss.backward()
    assert torch.allclose(weight.grad, 2 * (weight.detach() - quantized))


def test_clusters_are_intervals_of_the_sorted_weights(student):
    name = "encoder.layers.0.fc1.weight"
    original_values = quantizable_weights(student)[name].detach().flatten().clone()
    q = CodebookQuantizer(student, {name: 4})
    q.attach()
    grid = q.grids[name]
    labels = grid.labels.flatten()[original_values.argsort()]
    assert (labels.diff() >= 0).all()  # 1-D k-means: each cluster is a contiguous range
    used = grid.codebook[grid.counts > 0]
    assert (used.diff() > 0).all()


def test_empty_clusters_are_deterministic():
    model = torch.nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([0.0, 1.0, 2.0]).repeat(4, 1).T)  # 3 distinct values
    q = CodebookQuantizer(model, {"weight": 3})
    q.attach()
    assert sorted(torch.unique(model.weight).tolist()) == [0.0, 1.0, 2.0]
    grid = q.grids["weight"]
    assert int((grid.counts > 0).sum()) == 3 and torch.isfinite(grid.codebook).all()
    first = grid.codebook.clone()
    q.attach()
    assert torch.equal(first, q.grids["weight"].codebook)


def student_t(count: int, dof: int, seed: int) -> torch.Tensor:
    """Heavy-tailed weights like a trained layer's, from a private generator (normal / sqrt(chi2 / dof))."""
    normal = torch.randn(1 + dof, count, generator=torch.Generator().manual_seed(seed))
    return normal[0] / normal[1:].pow(2).mean(0).sqrt()


def test_kmeans_beats_uniform_grid_and_linspace_init():
    weight = student_t(20000, 3, seed=0) * 0.02
    data = SortedValues.of(weight)
    for bits in (2, 4, 8):
        density = data.squared_error(kmeans_1d(weight, 2 ** bits, 15).double())
        linspace = data.squared_error(kmeans_1d(weight, 2 ** bits, 15, init="linspace").double())
        scale, zero_point = calibrate(weight, bits, "mse")
        uniform = data.squared_error(affine_levels(scale, zero_point, bits).double())
        assert density < linspace and density < uniform


def test_bad_update_names_the_value(student):
    with pytest.raises(ValueError, match="update='sgd'"):
        CodebookQuantizer(student, {"head.weight": 2}, update="sgd")
