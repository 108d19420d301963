import pytest
import torch

from quads_search.quant import pack_bits, unpack_bits


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("count", [0, 1, 7, 9, 1001])
def test_round_trip_is_dense(bits, count):
    codes = torch.randint(0, 2 ** bits, (count,), generator=torch.Generator().manual_seed(bits * count))
    packed = pack_bits(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == (count * bits + 7) // 8
    assert torch.equal(unpack_bits(packed, bits, count), codes)


def test_layout_is_lsb_first():
    assert pack_bits(torch.tensor([1, 0, 1, 1, 0, 0, 0, 0, 1]), 1).tolist() == [0b1101, 1]
    assert pack_bits(torch.tensor([3, 1, 2]), 3).tolist() == [3 | 1 << 3 | (2 & 3) << 6, 2 >> 2]


def test_rejects_out_of_range():
    with pytest.raises(ValueError, match="codes must lie in"):
        pack_bits(torch.tensor([4]), 2)
    with pytest.raises(ValueError, match="bits"):
        pack_bits(torch.tensor([0]), 9)
    with pytest.raises(ValueError, match="expected 1 uint8 bytes"):
        unpack_bits(torch.zeros(2, dtype=torch.uint8), 2, 3)
