"""Joint-stage primitives (update without snapping, explicit snap) and checkpoint state."""
import pytest
import torch

from quads_search.config import QuantizationConfig
from quads_search.core.quantizer import make_quantizer
from quads_search.quant import CodebookQuantizer, quantizable_weights


def _plain_weights(q):
    return {n: q.weight(n) for n in q.low}


def test_update_codebooks_leaves_weights_free_and_snap_puts_them_back(make_student, mode):
    model = make_student()
    q = make_quantizer(model, QuantizationConfig(bits={"default": 3}, **mode))
    q.attach()
    with torch.no_grad():
        for w in quantizable_weights(model).values():
            w.add_(0.01 * torch.randn_like(w))
    drifted = {n: w.clone() for n, w in _plain_weights(q).items()}
    q.update_codebooks()
    assert all(torch.equal(drifted[n], w) for n, w in _plain_weights(q).items())  # not snapped
    assert q.centroid_loss().item() > 0
    q.snap()
    assert q.centroid_loss().item() == 0 and q.distinct_ok()


def test_kmeans_update_moves_centroids_to_cluster_means(make_student):
    model = make_student()
    q = CodebookQuantizer(model, dict.fromkeys(quantizable_weights(model), 2))
    q.attach()
    name, grid = next(iter(q.grids.items()))
    weight = quantizable_weights(model)[name]
    with torch.no_grad():
        weight.add_(0.05)
    q.update_codebooks()
    labels = grid.labels.flatten()
    flat = weight.detach().flatten()
    for k in range(4):
        if (labels == k).any():
            assert torch.allclose(grid.codebook[k], flat[labels == k].mean(), atol=1e-6)


def test_state_dict_round_trip_continues_training_identically(make_student, mode, features, train):
    a, b = make_student(seed=0), make_student(seed=0)
    config = QuantizationConfig(bits={"default": 2}, **mode)
    qa, qb = make_quantizer(a, config), make_quantizer(b, config)
    qa.fit()
    qa.begin()
    train(a, qa, features, steps=2)
    qa.end()
    state = qa.state_dict()
    assert all(not t.requires_grad for t in state.values())
    b.load_state_dict(a.state_dict())
    qb.load_state_dict(state)
    assert qb.fitted
    for q, model in ((qa, a), (qb, b)):  # the next quantized stage keeps the grids
        q.begin()
        train(model, q, features, steps=2)
        q.end()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert all(torch.equal(x, y) for x, y in zip(qa.state_dict().values(), qb.state_dict().values()))


def test_an_empty_state_is_not_fitted(student):
    q = CodebookQuantizer(student, {"head.weight": 2})
    q.load_state_dict({})
    assert not q.fitted
    with pytest.raises(RuntimeError, match="call fit"):
        q.begin()
