"""Every quantizer honours the same lifecycle contract."""
import pytest
import torch

from quads_search.config import QuantizationConfig
from quads_search.core.quantizer import make_quantizer
from quads_search.quant import AffineQuantizer, CodebookQuantizer, quantizable_weights

METHODS = ["kmeans", "affine"]


def quantizer(method, model, bits):
    cls = CodebookQuantizer if method == "kmeans" else AffineQuantizer
    return cls(model, bits)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bits", range(1, 9))
def test_at_most_2b_values_after_attach_and_step(student, method, bits, drift):
    weights = quantizable_weights(student)
    q = quantizer(method, student, dict.fromkeys(weights, bits))
    q.attach()
    assert q.distinct_ok(), q.distinct_violations()
    drift(weights)
    assert not q.distinct_ok()
    q.step()
    assert q.distinct_ok(), q.distinct_violations()
    assert max(int(torch.unique(w).numel()) for w in weights.values()) <= 2 ** bits


@pytest.mark.parametrize("method", METHODS)
def test_centroid_loss_zero_after_snap_positive_after_drift(student, method, drift):
    weights = quantizable_weights(student)
    q = quantizer(method, student, dict.fromkeys(weights, 3))
    q.attach()
    assert q.centroid_loss().item() == 0.0
    drift(weights)
    loss = q.centroid_loss()
    assert loss.item() > 0
    loss.backward()
    name, w = next(iter(weights.items()))
    assert torch.allclose(w.grad, 2 * (w.detach() - q._target(name, w.detach())))
    q.step()
    assert q.centroid_loss().item() == 0.0


@pytest.mark.parametrize("method", METHODS)
def test_16_bits_snap_to_fp16_and_32_bits_untouched(student, method, drift):
    weights = quantizable_weights(student)
    bits = {n: 4 for n in weights} | {"encoder.conv1.weight": 16, "head.weight": 32}
    before = {n: w.detach().clone() for n, w in weights.items()}
    q = quantizer(method, student, bits)
    q.attach()
    conv1, head = weights["encoder.conv1.weight"], weights["head.weight"]
    assert torch.equal(head, before["head.weight"])
    assert torch.equal(conv1, before["encoder.conv1.weight"].half().float())
    assert not torch.equal(conv1, before["encoder.conv1.weight"])
    drift(weights)
    drifted_head = head.detach().clone()
    q.step()
    assert torch.equal(conv1, conv1.half().float()) and torch.equal(head, drifted_head)


@pytest.mark.parametrize("method", METHODS)
def test_biases_and_norms_untouched(student, method):
    floats = {n: p.detach().clone() for n, p in student.named_parameters() if p.ndim < 2 or not p.requires_grad}
    q = make_quantizer(student, QuantizationConfig(method=method, bits={"default": 2}))
    q.attach()
    q.step()
    assert all(torch.equal(p, floats[n]) for n, p in student.named_parameters() if n in floats)


@pytest.mark.parametrize("method", METHODS)
def test_lifecycle_errors(student, method, drift):
    weights = quantizable_weights(student)
    q = quantizer(method, student, dict.fromkeys(weights, 4))
    with pytest.raises(RuntimeError, match="attach"):
        q.step()
    q.attach()
    drift(weights)
    with pytest.raises(RuntimeError, match="not on its quantization grid"):
        q.packed_tensors()
    with pytest.raises(ValueError, match="not quantizable"):
        quantizer(method, student, {"encoder.layer_norm.weight": 4})


def test_make_quantizer_follows_config(student):
    config = QuantizationConfig(method="affine", bits={"default": 4, "head": 8, r"re:layers\.1\..*": 32},
                                calibration="minmax")
    q = make_quantizer(student, config)
    assert isinstance(q, AffineQuantizer) and q.calibration == "minmax"
    assert q.bits["head.weight"] == 8 and q.bits["encoder.layers.1.fc2.weight"] == 32
    assert "encoder.layers.1.fc2.weight" not in q.low and q.bits["encoder.conv1.weight"] == 4
    q = make_quantizer(student, QuantizationConfig(method="kmeans", kmeans_iters=3))
    assert isinstance(q, CodebookQuantizer) and q.iters == 3
