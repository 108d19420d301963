import pytest
import torch

from quads_search.quant import AffineQuantizer, quantizable_weights
from quads_search.quant.latent import original


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_weights_lie_on_one_uniform_grid(student, bits):
    weights = quantizable_weights(student)
    q = AffineQuantizer(student, dict.fromkeys(weights, bits))
    q.attach()
    for name, weight in weights.items():
        grid = q.grids[name]
        codes = weight / grid.scale + grid.zero_point
        assert torch.allclose(codes, codes.round(), atol=1e-3)
        assert 0 <= codes.round().min() and codes.round().max() <= 2 ** bits - 1


def test_one_bit_has_two_nonzero_levels(student):
    weight = quantizable_weights(student)["encoder.layers.0.fc1.weight"]
    AffineQuantizer(student, {"encoder.layers.0.fc1.weight": 1}).attach()
    low, high = torch.unique(weight).tolist()
    assert low < 0 < high  # a float zero point: not forced to {0, a}


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_mse_calibration_beats_minmax(student, bits):
    name = "encoder.layers.1.fc2.weight"
    original_values = quantizable_weights(student)[name].detach().clone()
    errors = {}
    for how in ("minmax", "mse"):
        weight = quantizable_weights(student)[name]
        with torch.no_grad():
            weight.copy_(original_values)
        AffineQuantizer(student, {name: bits}, calibration=how).attach()
        errors[how] = float((weight.detach() - original_values).square().sum())
    assert errors["mse"] <= errors["minmax"] * (1 + 1e-6)
    if bits <= 4:
        assert errors["mse"] < 0.9 * errors["minmax"]  # clipping the tails pays at low bits


def test_minmax_spans_the_range(student):
    name = "head.weight"
    weight = quantizable_weights(student)[name]
    lo, hi = float(weight.detach().min()), float(weight.detach().max())
    AffineQuantizer(student, {name: 3}, calibration="minmax").attach()
    assert float(weight.detach().min()) == pytest.approx(lo, rel=1e-6)
    assert float(weight.detach().max()) == pytest.approx(hi, rel=1e-6)


def test_updates_below_half_a_level_accumulate_until_weights_change_level(student):
    name = "encoder.layers.0.fc1.weight"
    q = AffineQuantizer(student, {name: 2})
    q.fit()
    q.begin()
    latent, grid = original(student, name), q.grids[name]
    before, start = grid.codes(latent), latent.detach().clone()
    optimizer = torch.optim.SGD([latent], lr=1.0)
    for _ in range(10):  # the same gradient every step: each update a tenth of a level
        optimizer.zero_grad()
        (student.encoder.layers[0].fc1.weight.sum() * -0.1 * grid.scale.item()).backward()
        optimizer.step()
        q.step()
    q.end()
    after = grid.codes(q.weight(name))
    level = start / grid.scale + grid.zero_point
    inside = (before < 3) & (level >= 0)  # below 0 the weight is clipped: no gradient
    assert (after[inside] == before[inside] + 1).double().mean() > 0.999  # a whole level up


def test_clipped_weights_get_no_gradient(student):
    name = "head.weight"
    q = AffineQuantizer(student, {name: 2}, calibration="mse")  # mse clips the tails at 2 bits
    q.fit()
    q.begin()
    student.head.weight.sum().backward()
    grid, latent = q.grids[name], original(student, name)
    level = latent.detach() / grid.scale + grid.zero_point
    clipped = (level < 0) | (level > 3)
    assert clipped.any() and (latent.grad[clipped] == 0).all() and (latent.grad[~clipped] == 1).all()


def test_learned_scale_and_zero_point_get_lsq_gradients_and_change(student, features, train):
    name = "encoder.layers.1.fc1.weight"
    q = AffineQuantizer(student, {name: 2}, scale="learned")
    q.fit()
    q.begin()
    grid, latent = q.grids[name], original(student, name)
    start = grid.scale.detach().clone(), grid.zero_point.detach().clone()
    out = student.encoder.layers[1].fc1.weight
    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()
    level = latent.detach() / start[0] + start[1]
    inside = (level >= 0) & (level <= 3)
    clipped_at = level.clamp(0, 3).round()
    d_scale = torch.where(inside, level.round() - level, clipped_at - start[1])  # LSQ(+), per element
    d_zero = torch.where(inside, torch.zeros_like(level), -start[0].expand_as(level))
    factor = 1 / (latent.numel() * 3) ** 0.5
    assert torch.allclose(grid.scale.grad, factor * (upstream * d_scale).sum().reshape(1), rtol=1e-4)
    assert torch.allclose(grid.zero_point.grad, factor * (upstream * d_zero).sum().reshape(1), rtol=1e-4)
    q.grids[name].scale.grad = q.grids[name].zero_point.grad = latent.grad = None
    train(student, q, features, steps=3, lr=0.5)
    assert not torch.equal(grid.scale.detach(), start[0]) and not torch.equal(grid.zero_point.detach(), start[1])
    q.end()
    assert q.distinct_ok() and len(q.packed_tensors()) == 1  # exported on the learned grid


def test_learned_parameters_reach_the_optimizer_and_leave_with_the_stage(student):
    q = AffineQuantizer(student, dict.fromkeys(quantizable_weights(student), 2), scale="learned")
    q.fit()
    count = sum(1 for _ in student.parameters())
    q.begin()
    params = {id(p) for p in student.parameters()}
    assert all(id(g.scale) in params and id(g.zero_point) in params for g in q.grids.values())
    q.end()
    assert sum(1 for _ in student.parameters()) == count


def test_non_positive_learned_scale_is_an_error(student):
    q = AffineQuantizer(student, {"head.weight": 2}, scale="learned")
    q.fit()
    q.begin()
    with torch.no_grad():
        q.grids["head.weight"].scale.fill_(-1e-3)
    with pytest.raises(FloatingPointError, match="learned affine scale of head.weight reached -0.001"):
        q.step()


def test_grid_is_fixed_during_steps(student, features, train):
    q = AffineQuantizer(student, dict.fromkeys(quantizable_weights(student), 4))
    q.fit()
    grids = {n: (g.scale.clone(), g.zero_point.clone()) for n, g in q.grids.items()}
    q.begin()
    train(student, q, features)
    assert all(torch.equal(grids[n][0], g.scale) and torch.equal(grids[n][1], g.zero_point)
               for n, g in q.grids.items())


def test_constant_tensor():
    model = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.25)
    AffineQuantizer(model, {"weight": 2}).attach()
    assert torch.equal(model.weight, torch.full((2, 3), 0.25))
