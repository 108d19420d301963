import pytest
from torch import nn

from quads_search.quant import size_report


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)  # 12 + 3
        self.norm = nn.LayerNorm(3)  # 3 + 3
        self.table = nn.Embedding(5, 3)  # frozen: not a parameter by the paper's convention
        self.table.requires_grad_(False)


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)  # 12 + 3
        self.norm = nn.LayerNorm(3)  # 3 + 3
        self.fc2 = nn.Linear(3, 2)  # 6 + 2


def test_float_model():
    report = size_report(Tiny(), {})
    assert report == {"params_m": 21e-6, "size_mb_nominal": 84 / 2 ** 20, "size_mb": 84 / 2 ** 20, "bits_avg": 32.0}


def test_kmeans_affine_and_fp16_by_hand():
    kmeans = size_report(Tiny(), {"fc.weight": 2}, "kmeans")
    # 12 codes x 2 bits = 3 bytes, codebook 4 x 4 bytes, 9 float32 tensors' values x 4 bytes
    assert kmeans["size_mb"] * 2 ** 20 == 3 + 16 + 36
    assert kmeans["size_mb_nominal"] * 2 ** 20 == 21 * 2 / 8  # uniform: the paper counts every parameter at 2 bits
    assert kmeans["bits_avg"] == pytest.approx((12 * 2 + 9 * 32) / 21)  # what is stored
    assert size_report(Tiny(), {"fc.weight": 2}, "affine")["size_mb"] * 2 ** 20 == 3 + 8 + 36
    assert size_report(Tiny(), {"fc.weight": 3}, "affine")["size_mb"] * 2 ** 20 == 5 + 8 + 36  # ceil(36 / 8)
    assert size_report(Tiny(), {"fc.weight": 16})["size_mb"] * 2 ** 20 == 24 + 36


def test_mixed_allocation_counts_biases_at_their_layer_and_norms_at_32():
    report = size_report(TwoLayers(), {"fc1.weight": 2, "fc2.weight": 8})
    # fc1 weight and bias at 2 bits, fc2 weight and bias at 8, the LayerNorm (no quantized weight) at 32
    assert report["size_mb_nominal"] * 2 ** 20 == ((12 + 3) * 2 + (6 + 2) * 8 + 6 * 32) / 8
    assert report["bits_avg"] == pytest.approx((12 * 2 + 6 * 8 + 11 * 32) / 29)
    assert report["size_mb"] * 2 ** 20 == 3 + 16 + 6 + 4 * 256 + 11 * 4


def test_whisper_student_excludes_positions(student):
    total = sum(p.numel() for p in student.parameters())
    assert round(size_report(student, {})["params_m"] * 1e6) == total - 150 * 64


def test_unknown_name_is_an_error():
    with pytest.raises(ValueError, match="not trainable parameters"):
        size_report(Tiny(), {"table.weight": 4})
