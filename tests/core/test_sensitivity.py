"""Sensitivity (#19): Hutchinson traces against exact Hessians, quantization errors, bit groups,
exact and greedy allocations against brute force. Fast: tiny tensors and meta-device students."""
import itertools
import random

import pytest
import torch
import torch.nn.functional as F

from quads_search.config.units import frames_for
from quads_search.core.allocation import Option, exact, frontier, greedy, greedy_gap, spread_budgets
from quads_search.core.hutchinson import hessian_traces
from quads_search.core.models import SLUModel, encoder_arch
from quads_search.core.sensitivity import Sensitivity, TensorSensitivity, quantization_error
from quads_search.quant import VALID_BITS, quantizable_weights, resolve_bits, size_report
from quads_search.quant.size import MIB
from quads_search.sweep.seeding import bit_groups, fixed_bytes, group_options
from quads_search.sweep.params import apply_params
from quads_search.sweep.space import load_sweep
from tests.conftest import SPACE


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second thread only adds hand-offs (on a busy machine, a hundredfold)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- Hutchinson ----------------------------------------------------------------------------------
def tiny_problem():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(48, 5, generator=g), torch.randint(0, 3, (48,), generator=g)
    w1 = (torch.randn(4, 5, generator=g) * 0.8).requires_grad_()
    w2 = (torch.randn(3, 4, generator=g) * 0.8).requires_grad_()

    def loss(a, b, index):
        return F.cross_entropy(torch.tanh(x[index] @ a.T) @ b.T, y[index])

    return loss, w1, w2, [torch.arange(0, 24), torch.arange(24, 48)]


def exact_traces(loss, w1, w2, batches):
    """Trace of each diagonal Hessian block, averaged over batches, from the full Hessian by autograd."""
    out = {"w1": 0.0, "w2": 0.0}
    for index in batches:
        h1 = torch.autograd.functional.hessian(lambda a, i=index: loss(a, w2.detach(), i), w1.detach())
        h2 = torch.autograd.functional.hessian(lambda b, i=index: loss(w1.detach(), b, i), w2.detach())
        out["w1"] += float(h1.reshape(w1.numel(), -1).trace()) / len(batches)
        out["w2"] += float(h2.reshape(w2.numel(), -1).trace()) / len(batches)
    return out


def test_hutchinson_matches_the_exact_hessian_trace_of_each_tensor():
    loss, w1, w2, batches = tiny_problem()
    want = exact_traces(loss, w1, w2, batches)
    got = hessian_traces(lambda index: loss(w1, w2, index), batches, {"w1": w1, "w2": w2}, probes=600,
                         generator=torch.Generator().manual_seed(0))
    for name in ("w1", "w2"):
        assert abs(want[name]) > 1e-3
        assert got[name].trace == pytest.approx(want[name], rel=0.08, abs=4 * got[name].sem), (name, got, want)
        assert got[name].samples == 2 * 600


def test_hutchinson_is_seeded_and_leaves_no_gradients_behind():
    loss, w1, w2, batches = tiny_problem()
    def run():
        return hessian_traces(lambda i: loss(w1, w2, i), batches, {"w1": w1, "w2": w2}, probes=3,
                              generator=torch.Generator().manual_seed(7))

    assert run() == run()
    assert w1.grad is None and w2.grad is None


def test_a_tensor_the_loss_never_uses_has_zero_trace():
    loss, w1, w2, batches = tiny_problem()
    unused = torch.zeros(2, 2, requires_grad=True)
    got = hessian_traces(lambda i: loss(w1, w2, i), batches, {"w1": w1, "unused": unused}, probes=2,
                         generator=torch.Generator().manual_seed(0))
    assert got["unused"].trace == 0.0 and got["w1"].trace != 0.0


# -- quantization error --------------------------------------------------------------------------
def test_quantization_error_is_zero_at_32_bits_and_where_the_grid_holds_every_value(smoke_config):
    q = smoke_config.quantization
    four_values = torch.tensor([-1.0, -0.25, 0.5, 2.0]).repeat(50)
    assert quantization_error(four_values, 2, q) == pytest.approx(0.0, abs=1e-10)  # k-means: 4 centroids, 4 values
    evenly = torch.linspace(-1, 2, 4).repeat(50)  # on an affine 2-bit grid
    affine = type(q)(method="affine", calibration="minmax")
    assert quantization_error(evenly, 2, affine) == pytest.approx(0.0, abs=1e-10)
    w = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    assert quantization_error(w, 32, q) == 0.0
    for config in (q, affine):
        errors = [quantization_error(w, b, config) for b in (1, 2, 4, 8, 16)]
        assert all(a > b > 0 for a, b in itertools.pairwise(errors)), errors


# -- groups and sizes ----------------------------------------------------------------------------
def meta_student(config, classes=31):
    arch = encoder_arch(config.student, frames_for(config.dataset.seconds))
    with torch.device("meta"):
        return SLUModel(arch, classes)


def fake_sensitivity(model, seed=0) -> Sensitivity:
    rng = random.Random(seed)
    tensors = {n: TensorSensitivity(w.numel(), rng.uniform(0.1, 2.0), 0.0,
                                    {b: rng.uniform(1, 2) * w.numel() * 2.0 ** -b for b in VALID_BITS})
               for n, w in quantizable_weights(model).items()}
    return Sensitivity(tensors, {}, 0.0, None)


def test_the_shipped_space_groups_every_tensor_once_and_sizes_add_up_as_size_report_counts(smoke_config):
    model = meta_student(smoke_config)
    groups, fixed_bits = bit_groups(smoke_config, model)
    assert [g.name for g in groups] == [n for n in smoke_config.space if n.startswith("bits.")]
    owned = [t for g in groups for t in g.tensors]
    assert sorted(owned) == sorted(quantizable_weights(model)) and not fixed_bits  # every tensor, once
    (conv1,) = [g for g in groups if g.name == "bits.conv1"]
    assert conv1.tensors == ("encoder.conv1.weight",) and conv1.widths == (2, 4, 8)
    layer0 = next(g for g in groups if "layers\\.0\\.self_attn" in g.name)
    assert len(layer0.tensors) == 4  # q, k, v, out projections
    options = group_options(groups, fake_sensitivity(model), smoke_config.quantization.method)
    fixed = fixed_bytes(model, fixed_bits, set(owned), smoke_config.quantization.method)
    rng = random.Random(1)
    for _ in range(5):
        pick = {g.name: rng.choice(g.widths) for g in groups}
        config = apply_params(smoke_config.run_config(), pick)
        bits = config.quantization.bits
        resolved = resolve_bits(quantizable_weights(model), bits["default"],
                                {k: v for k, v in bits.items() if k != "default"})
        total = fixed + sum(next(o.size for o in options[n] if o.bits == b) for n, b in pick.items())
        assert total / MIB == pytest.approx(size_report(model, resolved, config.quantization.method)["size_mb"],
                                            rel=1e-12)


def test_a_later_bits_entry_takes_tensors_from_an_earlier_one_and_the_rest_stay_fixed(smoke_cache):
    config = load_sweep(SPACE, [f"cache_dir={smoke_cache}", "quantization.bits={default: 4, conv1: 8}",
                                "space={bits.layers.0.fc1: {choice: [2, 4]}, 'bits.re:layers\\.0\\..*': {choice: [1, 8]}}"])
    model = meta_student(config)
    groups, fixed_bits = bit_groups(config, model)
    by_name = {g.name: g for g in groups}
    # Searched keys come after the base entries, in space order: the regex wins over fc1 for layer 0.
    assert by_name["bits.layers.0.fc1"].tensors == ()
    assert "encoder.layers.0.fc1.weight" in by_name["bits.re:layers\\.0\\..*"].tensors
    assert fixed_bits["encoder.conv1.weight"] == 8 and fixed_bits["encoder.layers.1.fc2.weight"] == 4
    assert not set(fixed_bits) & {t for g in groups for t in g.tensors}


# -- allocations ---------------------------------------------------------------------------------
def random_groups(rng: random.Random, count: int) -> dict[str, list[Option]]:
    groups = {}
    for g in range(count):
        n = rng.randint(50, 5000)
        widths = sorted(rng.sample([1, 2, 3, 4, 8, 16], rng.randint(2, 4)))
        groups[f"g{g}"] = [Option(b, n * b // 8 + 8, rng.uniform(0.5, 2) * n * 4.0 ** -b) for b in widths]
    return groups


def brute_force(groups, budget):
    best = None
    for combo in itertools.product(*groups.values()):
        size, cost = sum(o.size for o in combo), sum(o.cost for o in combo)
        if size <= budget and (best is None or cost < best[1]):
            best = (size, cost)
    return best


def test_the_exact_allocation_is_the_brute_force_optimum_and_greedy_never_beats_it():
    rng = random.Random(0)
    gaps = []
    for _ in range(25):
        groups = random_groups(rng, rng.randint(1, 5))
        low, high = (sum(f(o.size for o in opts) for opts in groups.values()) for f in (min, max))
        for budget in [low - 1, low, *(rng.randint(low, high) for _ in range(4)), high]:
            want, got, quick = brute_force(groups, budget), exact(groups, budget), greedy(groups, budget)
            if want is None:
                assert got is None and quick is None
                continue
            assert got.cost == pytest.approx(want[1], rel=1e-12) and got.size <= budget
            assert got.size == sum(next(o.size for o in groups[n] if o.bits == b) for n, b in got.bits.items())
            assert quick.size <= budget and quick.cost >= got.cost * (1 - 1e-12)
            gaps.append(greedy_gap(got.cost, quick.cost))
    assert min(gaps) == 0 and max(gaps) > 0  # greedy is often optimal, not always


def test_greedy_takes_the_cheapest_move_per_byte_even_when_a_smaller_step_would_do():
    groups = {"a": [Option(8, 10, 0.0), Option(4, 2, 4.0)], "b": [Option(8, 10, 0.0), Option(4, 9, 0.9)]}
    assert greedy(groups, 19).bits == {"a": 4, "b": 8}  # 0.5 per byte beats 0.9 per byte
    assert exact(groups, 19).bits == {"a": 8, "b": 4}
    assert greedy_gap(0.9, 4.0) == pytest.approx(3.1 / 0.9)


def test_the_frontier_is_non_dominated_and_smallest_first():
    groups = random_groups(random.Random(4), 4)
    front = frontier(groups)
    assert [a.size for a in front] == sorted(a.size for a in front)
    assert all(later.cost < earlier.cost for earlier, later in itertools.pairwise(front))
    assert front[0].size == sum(min(o.size for o in opts) for opts in groups.values())


def test_budgets_sit_in_the_middle_of_equal_geometric_slices_of_the_range():
    groups = {"a": [Option(2, 100, 1.0), Option(8, 400, 0.0)], "b": [Option(1, 50, 1.0), Option(4, 200, 0.0)]}
    budgets = spread_budgets(groups, 1000, 4)  # smallest allocation 1150 bytes, largest 1600
    step = (1600 / 1150) ** (1 / 4)  # one slice's size ratio
    assert len(budgets) == 4 and 1150 < budgets[0] < budgets[-1] < 1600
    assert budgets[0] / 1150 == pytest.approx(step ** 0.5, rel=1e-3)  # half a slice above the narrowest
    assert 1600 / budgets[-1] == pytest.approx(step ** 0.5, rel=1e-3)  # and below the widest
    assert all(b / a == pytest.approx(step, rel=2e-3) for a, b in itertools.pairwise(budgets))
