import pytest

from quads_search.errors import UserError
from quads_search.quant import quantizable_weights, readable_name, resolve_bits


def test_selects_trainable_matrices_only(student):
    names = set(quantizable_weights(student))
    assert {"encoder.conv1.weight", "encoder.conv2.weight", "encoder.layers.0.fc1.weight",
            "encoder.layers.1.self_attn.q_proj.weight", "head.weight"} <= names
    assert not any(n.endswith(".bias") or "layer_norm" in n or "embed_positions" in n for n in names)
    assert len(names) == 2 + 2 * 6 + 1  # conv stem, 4 attention + 2 ffn per layer, head


def test_readable_name():
    assert readable_name("encoder.layers.0.fc1.weight") == "layers.0.fc1"
    assert readable_name("encoder.conv1.weight") == "conv1"
    assert readable_name("head.weight") == "head"


NAMES = ["encoder.conv1.weight", "encoder.layers.0.fc1.weight", "encoder.layers.1.fc1.weight", "head.weight"]


def test_default_applies_to_all():
    assert resolve_bits(NAMES, 4, {}) == dict.fromkeys(NAMES, 4)


def test_exact_readable_and_full_names():
    bits = resolve_bits(NAMES, 4, {"conv1": 8, "head.weight": 32})
    assert bits == {"encoder.conv1.weight": 8, "encoder.layers.0.fc1.weight": 4,
                    "encoder.layers.1.fc1.weight": 4, "head.weight": 32}


def test_regex_fullmatches_readable_names():
    bits = resolve_bits(NAMES, 4, {r"re:layers\.\d+\.fc1": 2})
    assert bits["encoder.layers.0.fc1.weight"] == 2 and bits["encoder.layers.1.fc1.weight"] == 2
    assert bits["encoder.conv1.weight"] == 4


def test_regex_no_fullmatch_is_an_error():
    with pytest.raises(UserError, match="'re:fc1' matches no weight tensor"):
        resolve_bits(NAMES, 4, {"re:fc1": 16})


def test_later_keys_win():
    assert resolve_bits(NAMES, 4, {"re:.*": 2, "head": 8})["head.weight"] == 8
    assert resolve_bits(NAMES, 4, {"head": 8, "re:.*": 2})["head.weight"] == 2


def test_unmatched_override_names_key_and_valid_names():
    with pytest.raises(UserError) as err:
        resolve_bits(NAMES, 4, {"layers.0.fc3": 2})
    message = str(err.value)
    assert "'layers.0.fc3'" in message and "conv1" in message and "\n" not in message


def test_bad_regex_and_bad_bits_are_user_errors():
    with pytest.raises(UserError, match="not a valid regex"):
        resolve_bits(NAMES, 4, {"re:(": 2})
    with pytest.raises(UserError, match="must be one of"):
        resolve_bits(NAMES, 4, {"head": 12})
