"""Joint-stage primitives (update without snapping, explicit snap) and checkpoint state."""
import pytest
import torch

from quads_search.quant import AffineQuantizer, CodebookQuantizer, quantizable_weights

METHODS = {"kmeans": CodebookQuantizer, "affine": AffineQuantizer}


def _quantizer(model, method, bits=3):
    return METHODS[method](model, {name: bits for name in quantizable_weights(model)})


@pytest.mark.parametrize("method", METHODS)
def test_update_codebooks_leaves_weights_free_and_snap_puts_them_back(make_student, method):
    model = make_student()
    q = _quantizer(model, method)
    q.attach()
    with torch.no_grad():
        for w in q.low.values():
            w.add_(0.01 * torch.randn_like(w))
    drifted = {n: w.detach().clone() for n, w in q.low.items()}
    q.update_codebooks()
    assert all(torch.equal(drifted[n], w) for n, w in q.low.items())  # not snapped
    assert q.centroid_loss().item() > 0
    q.snap()
    assert q.centroid_loss().item() == 0 and q.distinct_ok()


def test_kmeans_update_moves_centroids_to_cluster_means(make_student):
    model = make_student()
    q = _quantizer(model, "kmeans", bits=2)
    q.attach()
    name, weight = next(iter(q.low.items()))
    with torch.no_grad():
        weight.add_(0.05)
    q.update_codebooks()
    labels = q.labels[name].flatten()
    flat = weight.detach().reshape(q.labels[name].shape).flatten()
    for k in range(4):
        if (labels == k).any():
            assert torch.allclose(q.codebooks[name][k], flat[labels == k].mean(), atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_state_dict_round_trip_restores_the_grid(make_student, method):
    a, b = make_student(seed=0), make_student(seed=0)
    qa, qb = _quantizer(a, method), _quantizer(b, method)
    qa.attach()
    b.load_state_dict(a.state_dict())
    qb.load_state_dict(qa.state_dict())
    assert qb.attached
    with torch.no_grad():
        for wa, wb in zip(qa.low.values(), qb.low.values()):
            noise = 0.02 * torch.randn_like(wa)
            wa.add_(noise)
            wb.add_(noise)
    qa.step()
    qb.step()
    assert all(torch.equal(x, y) for x, y in zip(qa.low.values(), qb.low.values()))
