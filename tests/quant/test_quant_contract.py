"""Every quantizer, in every training mode, honours the same lifecycle contract."""
import pytest
import torch

from quads_search.config import QuantizationConfig
from quads_search.core.export import read_packed, save_packed
from quads_search.core.quantizer import make_quantizer
from quads_search.quant import AffineQuantizer, CodebookQuantizer, quantizable_weights
from quads_search.quant.latent import parametrized_names


def make(model, mode, default=4, **bits):
    return make_quantizer(model, QuantizationConfig(bits={"default": default, **bits}, **mode))


@pytest.mark.parametrize("method", ["kmeans", "affine"])
@pytest.mark.parametrize("bits", range(1, 9))
def test_at_most_2b_values_after_post_training_quantization(student, method, bits):
    q = make(student, {"method": method}, default=bits)
    q.attach()
    assert q.distinct_ok(), q.distinct_violations()
    assert max(int(torch.unique(w).numel()) for w in quantizable_weights(student).values()) <= 2 ** bits


@pytest.mark.parametrize("bits", [1, 3])
def test_at_most_2b_values_in_training_and_after(student, mode, bits, features, train):
    q = make(student, mode, default=bits)
    q.fit()
    q.begin()
    assert q.distinct_ok(), q.distinct_violations()
    train(student, q, features, steps=2)
    assert q.distinct_ok(), q.distinct_violations()  # the forward pass sees grid values
    q.end()
    assert max(int(torch.unique(w).numel()) for w in quantizable_weights(student).values()) <= 2 ** bits
    assert len(q.packed_tensors()) == len(q.low)


def test_training_leaves_a_plain_model_with_the_same_parameter_objects(student, mode, features, train):
    before = {n: id(p) for n, p in student.named_parameters()}
    q = make(student, mode, default=2, conv1=16)
    q.fit()
    q.begin()
    latent = mode != {"method": "kmeans", "kmeans_update": "mean"}
    expected = set(q.low) | {"encoder.conv1.weight"} if latent else {"encoder.conv1.weight"}
    assert set(parametrized_names(student)) == expected
    train(student, q, features)
    q.end()
    assert parametrized_names(student) == []
    assert {n: id(p) for n, p in student.named_parameters()} == before


def test_centroid_loss_on_plain_weights_and_its_gradient(student, mode, drift):
    q = make(student, mode, default=3)
    q.attach()
    assert q.centroid_loss().item() == 0.0
    weights = quantizable_weights(student)
    drift(weights)
    loss = q.centroid_loss()
    assert loss.item() > 0
    loss.backward()
    name = "encoder.layers.0.fc1.weight"
    w = weights[name]
    assert torch.allclose(w.grad, 2 * (w.detach() - q.grids[name].target(w.detach())))
    q.snap()
    assert q.centroid_loss().item() == 0.0


def test_16_bits_train_a_latent_behind_fp16_values_and_32_bits_stay(student, mode, features, train):
    q = make(student, mode, conv1=16, head=32)
    q.fit()
    q.begin()
    conv1 = student.encoder.conv1
    latent = conv1.parametrizations.weight.original
    start = latent.detach().clone()
    assert torch.equal(conv1.weight, start.half().float())
    rounded = start.half().float()
    with torch.no_grad():
        for _ in range(100):  # each update below half an fp16 step (relative step 2^-11 to 2^-10)
            latent.add_(start.abs() * 2 ** -13)
            rounded = (rounded + start.abs() * 2 ** -13).half().float()
    assert torch.equal(rounded, start.half().float())  # rounding the weight after each update erases them all
    moved = (conv1.weight != start.half().float()).double().mean()
    assert moved > 0.9 and torch.equal(conv1.weight, latent.detach().half().float())
    head = student.head.weight.detach().clone()
    train(student, q, features)
    q.end()
    assert torch.equal(conv1.weight, conv1.weight.half().float())
    assert not torch.equal(student.head.weight, head)  # trained, as float32


def test_biases_and_norms_untouched(student, mode):
    floats = {n: p.detach().clone() for n, p in student.named_parameters() if p.ndim < 2 or not p.requires_grad}
    make(student, mode, default=2).attach()
    assert all(torch.equal(p, floats[n]) for n, p in student.named_parameters() if n in floats)


def test_lifecycle_errors(student, mode, drift):
    q = make(student, mode)
    with pytest.raises(RuntimeError, match="call fit"):
        q.begin()
    q.fit()
    with pytest.raises(RuntimeError, match="call begin"):
        q.step()
    q.begin()
    for call in (q.fit, q.packed_tensors, q.snap, q.state_dict):
        with pytest.raises(RuntimeError, match="call end"):
            call()
    q.end()
    drift(quantizable_weights(student))
    with pytest.raises(RuntimeError, match="not on its quantization grid"):
        q.packed_tensors()
    with pytest.raises(ValueError, match="not quantizable"):
        CodebookQuantizer(student, {"encoder.layer_norm.weight": 4})


def test_make_quantizer_follows_config(student):
    config = QuantizationConfig(method="affine", bits={"default": 4, "head": 8, r"re:layers\.1\..*": 32},
                                calibration="minmax", affine_scale="learned")
    q = make_quantizer(student, config)
    assert isinstance(q, AffineQuantizer) and (q.calibration, q.scale_mode) == ("minmax", "learned")
    assert q.bits["head.weight"] == 8 and q.bits["encoder.layers.1.fc2.weight"] == 32
    assert "encoder.layers.1.fc2.weight" not in q.low and q.bits["encoder.conv1.weight"] == 4
    q = make_quantizer(student, QuantizationConfig(kmeans_iters=3, kmeans_update="ste", recluster_every=7))
    assert isinstance(q, CodebookQuantizer) and (q.iters, q.update, q.recluster_every) == (3, "ste", 7)


def test_config_problems_name_key_and_value():
    problems = QuantizationConfig(recluster_every=0, kmeans_iters=0).problems()
    assert ("recluster_every", "must be >= 1, got 0") in problems
    assert ("kmeans_iters", "must be >= 1, got 0") in problems


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_every_mode_trains_on_cuda_and_exports_bit_exactly(make_student, mode, features, train, tmp_path):
    model = make_student().cuda()
    q = make(model, mode, default=2, conv1=16)
    q.fit()
    q.begin()
    assert all(t.is_cuda for grid in q.grids.values() for t in grid.state_dict().values())
    train(model, q, features.cuda())
    assert q.distinct_ok()
    q.end()
    save_packed(model, q, tmp_path / "m.safetensors", {})  # compares the CPU dequantization with the GPU weights
    state, _ = read_packed(tmp_path / "m.safetensors")
    assert all(torch.equal(state[n], p.detach().cpu()) for n, p in model.named_parameters() if n in state)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_recorded_mean_step_on_cuda_equals_the_eager_one(make_student):
    models = [make_student().cuda() for _ in range(2)]
    quantizers = [make(m, {"kmeans_update": "mean"}, default=3) for m in models]
    for q in quantizers:
        q.fit()
        q.begin()
    for step in range(3):
        drift = {n: torch.randn(w.shape, generator=torch.Generator().manual_seed(step)).cuda() * 1e-3
                 for n, w in quantizable_weights(models[0]).items()}
        for model in models:
            with torch.no_grad():
                for name, weight in quantizable_weights(model).items():
                    weight.add_(drift[name])
        quantizers[0].step()  # the first step records, later ones replay
        with torch.no_grad():
            quantizers[1]._snap_all()  # eager
    assert quantizers[0]._graph is not None
    for (name, a), (_, b) in zip(models[0].named_parameters(), models[1].named_parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), name  # CUDA's scatter-add sums in any order
