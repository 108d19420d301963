import torch

from quads_search.quant import (
    CodebookQuantizer,
    calibrate,
    kmeans_1d,
    quantizable_weights,
)
from quads_search.quant.packed import affine_levels
from quads_search.quant.sorted1d import SortedValues


def naive_means(weight, labels, clusters):
    flat, labels = weight.detach().flatten(), labels.flatten()
    return [flat[labels == k].mean() for k in range(clusters) if (labels == k).any()]


def test_step_sets_centroids_to_cluster_means(student, drift):
    weights = quantizable_weights(student)
    q = CodebookQuantizer(student, {"head.weight": 3, "encoder.conv1.weight": 2})
    q.attach()
    drift(weights, scale=1e-2)
    expected = {n: naive_means(weights[n], q.labels[n], 2 ** q.bits[n]) for n in q.low}
    q.step()
    for name, weight in q.low.items():
        used = q.counts[name] > 0
        assert torch.allclose(q.codebooks[name][used], torch.stack(expected[name]), rtol=1e-5, atol=1e-8)
        assert torch.equal(weight, q.codebooks[name][q.labels[name]].view_as(weight))


def test_labels_fixed_across_steps(student, drift):
    weights = quantizable_weights(student)
    q = CodebookQuantizer(student, dict.fromkeys(weights, 4))
    q.attach()
    labels = {n: t.clone() for n, t in q.labels.items()}
    for seed in range(3):
        drift(weights, scale=5e-2, seed=seed)  # large enough to cross cluster midpoints
        q.step()
    assert all(torch.equal(labels[n], q.labels[n]) for n in labels)


def test_clusters_are_intervals_of_the_sorted_weights(student):
    name = "encoder.layers.0.fc1.weight"
    original = quantizable_weights(student)[name].detach().flatten().clone()
    q = CodebookQuantizer(student, {name: 4})
    q.attach()
    labels = q.labels[name].flatten()[original.argsort()]
    assert (labels.diff() >= 0).all()  # 1-D k-means: each cluster is a contiguous range
    used = q.codebooks[name][q.counts[name] > 0]
    assert (used.diff() > 0).all()


def test_empty_clusters_are_deterministic():
    model = torch.nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([0.0, 1.0, 2.0]).repeat(4, 1).T)  # 3 distinct values
    q = CodebookQuantizer(model, {"weight": 3})
    q.attach()
    assert sorted(torch.unique(model.weight).tolist()) == [0.0, 1.0, 2.0]
    assert int((q.counts["weight"] > 0).sum()) == 3 and torch.isfinite(q.codebooks["weight"]).all()
    first = q.codebooks["weight"].clone()
    q.attach()
    assert torch.equal(first, q.codebooks["weight"])


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
