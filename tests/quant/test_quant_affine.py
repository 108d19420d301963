import pytest
import torch

from quads_search.quant import AffineQuantizer, quantizable_weights


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_weights_lie_on_one_uniform_grid(student, bits):
    weights = quantizable_weights(student)
    q = AffineQuantizer(student, dict.fromkeys(weights, bits))
    q.attach()
    for name, weight in weights.items():
        scale, zero_point = q.grids[name]
        codes = weight / scale + zero_point
        assert torch.allclose(codes, codes.round(), atol=1e-3)
        assert 0 <= codes.round().min() and codes.round().max() <= 2 ** bits - 1


def test_one_bit_has_two_nonzero_levels(student):
    weight = quantizable_weights(student)["encoder.layers.0.fc1.weight"]
    q = AffineQuantizer(student, {"encoder.layers.0.fc1.weight": 1})
    q.attach()
    low, high = torch.unique(weight).tolist()
    assert low < 0 < high  # a float zero point: not forced to {0, a}


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_mse_calibration_beats_minmax(student, bits):
    name = "encoder.layers.1.fc2.weight"
    original = quantizable_weights(student)[name].detach().clone()
    errors = {}
    for how in ("minmax", "mse"):
        weight = quantizable_weights(student)[name]
        with torch.no_grad():
            weight.copy_(original)
        AffineQuantizer(student, {name: bits}, calibration=how).attach()
        errors[how] = float((weight.detach() - original).square().sum())
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


def test_grid_is_fixed_during_steps(student, drift):
    weights = quantizable_weights(student)
    q = AffineQuantizer(student, dict.fromkeys(weights, 4))
    q.attach()
    grids = {n: (s.clone(), z.clone()) for n, (s, z) in q.grids.items()}
    drift(weights, scale=5e-2)
    q.step()
    assert all(torch.equal(grids[n][0], s) and torch.equal(grids[n][1], z) for n, (s, z) in q.grids.items())


def test_constant_tensor():
    model = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.25)
    AffineQuantizer(model, {"weight": 2}).attach()
    assert torch.equal(model.weight, torch.full((2, 3), 0.25))
