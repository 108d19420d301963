"""The analysis the benches report: pairing by seed, hypervolume curves, trials to reach a target."""
import numpy as np
import pytest

from bench.common import mean_std, paired_t, t_critical, t_interval
from bench.samplers import analyse, hypervolume_curve, trials_to_reach
from bench.schedules import paired, pooled, summarize

OBJECTIVES = [("valid_accuracy", "max"), ("size_mb", "min")]


def run(schedule, seed, accuracy, bits=2, method="kmeans"):
    return {"schedule": schedule, "bits": bits, "method": method, "seed": seed, "test_accuracy": accuracy}


def test_paired_differences_match_seed_with_seed_within_each_cell():
    runs = [run("quads", 0, 0.5), run("quads", 1, 0.7), run("sequential", 0, 0.4), run("sequential", 1, 0.8),
            run("quads", 2, 0.9),  # no sequential partner: left out
            run("quads", 0, 0.3, bits=4), run("sequential", 0, 0.1, bits=4)]
    two_bits, four_bits = paired(runs, "quads", "sequential")
    assert (two_bits["bits"], four_bits["bits"]) == (2, 4)
    assert two_bits["difference"]["mean"] == pytest.approx(0.0)  # +0.1 and -0.1
    assert two_bits["difference"]["std"] == pytest.approx(np.std([0.1, -0.1], ddof=1))
    assert two_bits["wins"] == 1
    assert four_bits["difference"] == {"mean": pytest.approx(0.2), "std": None, "n": 1}
    overall = pooled(runs, "quads", "sequential")
    assert overall["difference"]["mean"] == pytest.approx(0.2 / 3) and overall["wins"] == 2
    low, high = overall["difference"]["ci95"]
    assert low < overall["difference"]["mean"] < high


def test_summary_is_mean_and_sample_std_over_seeds_and_no_std_for_one_seed():
    (row,) = summarize([run("ptq", s, a) for s, a in enumerate([0.2, 0.4, 0.6])])
    assert row["test_accuracy"] == {"mean": pytest.approx(0.4), "std": pytest.approx(0.2), "n": 3}
    assert mean_std([0.3])["std"] is None


def test_hypervolume_curve_grows_only_when_a_trial_extends_the_front():
    rows = [{"valid_accuracy": 0.5, "size_mb": 1.0}, {"valid_accuracy": 0.4, "size_mb": 1.5},  # dominated
            {"valid_accuracy": 0.8, "size_mb": 1.0}, {"valid_accuracy": 0.3, "size_mb": 0.5}]  # better; smaller
    curve = hypervolume_curve(rows, OBJECTIVES, np.array([0.0, 3.0]))
    assert curve == pytest.approx([0.5 * 2.0, 0.5 * 2.0, 0.8 * 2.0, 0.8 * 2.0 + 0.3 * 0.5])


def test_trials_to_reach_counts_from_one_and_says_never():
    assert trials_to_reach([0.1, 0.3, 0.3, 0.5], 0.3) == 2
    assert trials_to_reach([0.1, 0.2], 0.3) is None


def test_sampler_analysis_shares_one_reference_and_targets_random_final_mean():
    def study(sampler, seed, accuracies):
        return {"sampler": sampler, "seed": seed,
                "trials": [{"valid_accuracy": a, "size_mb": 1.0} for a in accuracies]}

    studies = [study("random", 0, [0.2, 0.4]), study("random", 1, [0.6, 0.6]),
               study("tpe", 0, [0.2, 0.8]), study("tpe", 1, [0.3, 0.3]),
               study("nsga2", 0, [0.1, 0.1]), study("nsga2", 1, [0.5, 0.5])]
    result = analyse(studies, OBJECTIVES)
    assert result["reference"] == pytest.approx([0.0, 1.1])  # 1.1 x the largest size of any study
    assert result["random_final_mean"] == pytest.approx(0.1 * (0.4 + 0.6) / 2)
    tpe = result["samplers"]["tpe"]
    assert tpe["mean"] == pytest.approx([0.1 * 0.25, 0.1 * 0.55])
    assert tpe["trials_to_reach_random_final"] == {"0": 2, "1": None}
    assert tpe["final_minus_random"]["mean"] == pytest.approx(0.1 * ((0.8 - 0.4) + (0.3 - 0.6)) / 2)
    assert result["samplers"]["random"]["final_minus_random"]["mean"] == 0.0


def test_t_interval_uses_students_t_not_the_normal_approximation():
    values = [0.2, 0.4, 0.6]  # mean 0.4, sd 0.2, n 3: t(0.975, 2) = 4.303
    out = t_interval(values)
    half = 4.303 * 0.2 / 3 ** 0.5
    assert out["ci95"] == pytest.approx([0.4 - half, 0.4 + half])
    assert out["median"] == pytest.approx(0.4) and out["range"] == [0.2, 0.6]
    assert t_interval([0.5])["ci95"] is None
    assert t_critical(1) == 12.706 and t_critical(35) == t_critical(30) == 2.042  # past the table: the lower df
    with pytest.raises(ValueError, match="df >= 1"):
        t_critical(0)


def test_paired_t_is_the_interval_of_seed_by_seed_differences():
    out = paired_t([0.5, 0.7, 0.9], [0.4, 0.5, 0.9])
    assert out["mean"] == pytest.approx(0.1) and out["wins"] == 2 and out["n"] == 3
    assert out["ci95"] == pytest.approx(t_interval([0.1, 0.2, 0.0])["ci95"])
    with pytest.raises(ValueError, match="equal lengths"):
        paired_t([0.1], [0.1, 0.2])

def _sweep(tmp_path, name, teacher, fp32, low, above):
    """A finished default sweep's trials.parquet and references.json, as bench.headline reads them."""
    import json

    import pandas as pd

    experiment = tmp_path / name / "mixed_precision"
    experiment.mkdir(parents=True)
    rows = [{"trial_id": "fp32", "status": "finished", "kind": "reference", "bits_avg": 32.0, "size_mb": 0.5,
             "valid_accuracy": fp32[0], "accuracy": fp32[1]},
            {"trial_id": "low", "status": "finished", "kind": "searched", "bits_avg": 1.95, "size_mb": 0.03,
             "valid_accuracy": low[0], "accuracy": low[1]},
            {"trial_id": "above", "status": "finished", "kind": "seeded", "bits_avg": 2.4, "size_mb": 0.04,
             "valid_accuracy": above[0], "accuracy": above[1]},  # more accurate, but over 2 bits
            {"trial_id": "broken", "status": "failed", "kind": "searched", "bits_avg": 1.5, "size_mb": 0.02,
             "valid_accuracy": None, "accuracy": None}]
    pd.DataFrame(rows).to_parquet(experiment / "trials.parquet")
    refs = {"teacher_valid_accuracy": teacher[0], "teacher_accuracy": teacher[1], "student_fp32_valid_accuracy": 0.7,
            "student_fp32_accuracy": 0.7}
    (experiment / "references.json").write_text(json.dumps(refs))
    return experiment


def test_headline_picks_the_best_valid_model_at_two_bits_and_states_drops_against_teacher_and_fp32(tmp_path):
    from bench.headline import pick, summarise

    picked = {("speakers", s): pick(_sweep(tmp_path, f"s{s}", (0.9, 0.8), (0.85, 0.8), (0.81, v), (0.95, 0.9)))
              for s, v in enumerate([0.72, 0.76, 0.74])}
    low = picked["speakers", 0]["low_bit"]
    assert low["trial_id"] == "low" and low["bits_avg"] == 1.95
    assert low["drop_vs_teacher_valid"] == pytest.approx((0.9 - 0.81) / 0.9)
    assert low["drop_vs_fp32_trial_test"] == pytest.approx((0.8 - 0.72) / 0.8)
    summary = summarise(picked)["speakers"]
    assert summary["seeds"] == [0, 1, 2]
    assert summary["low_bit"]["test"]["median"] == pytest.approx(0.74)
    assert summary["low_bit"]["test"]["range"] == pytest.approx([0.72, 0.76])
    assert summary["low_bit"]["drop_vs_teacher_test"]["median"] == pytest.approx((0.8 - 0.74) / 0.8)


def test_headline_previous_runs_read_back_the_keys_it_wrote(tmp_path):
    import json

    from bench.headline import pick, previous_runs

    run = pick(_sweep(tmp_path, "accents-s2", (0.9, 0.8), (0.85, 0.8), (0.81, 0.7), (0.95, 0.9)))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"runs": {"accents-s2": run, "speakers-s10": run}, "summary": {}}))
    assert previous_runs(old) == {("accents", 2): run, ("speakers", 10): run}


def test_headline_passes_its_overrides_to_every_sweep_it_runs(tmp_path, monkeypatch):
    import subprocess

    from bench import headline

    commands = []

    def fake_run(command, check):  # the sweep `quads-search run` would make
        commands.append(command)
        (tmp_path / "accents-s1").mkdir()

    monkeypatch.setattr(subprocess, "run", fake_run)
    headline.run_sweep(tmp_path, "CACHE", "accents", 1, ["search.sampler=tpe"])
    assert commands[0][-2:] == ["--set", "search.sampler=tpe"]
    assert "dataset.holdout=accents" in commands[0] and (tmp_path / "accents-s1" / "done").is_file()


def test_headline_names_a_seed_whose_sweep_has_nothing_at_two_bits_and_summarises_the_others(tmp_path):
    import pandas as pd

    from bench.headline import pick, summarise, table

    wide = _sweep(tmp_path, "s1", (0.9, 0.8), (0.85, 0.8), (0.81, 0.7), (0.95, 0.9))
    trials = pd.read_parquet(wide / "trials.parquet")
    trials.loc[trials["trial_id"] == "low", "bits_avg"] = 2.04  # the lowest seed just above 2 bits
    trials.to_parquet(wide / "trials.parquet")
    picked = {("speakers", 0): pick(_sweep(tmp_path, "s0", (0.9, 0.8), (0.85, 0.8), (0.81, 0.7), (0.95, 0.9))),
              ("speakers", 1): pick(wide)}
    assert picked["speakers", 1]["low_bit"] is None and picked["speakers", 1]["fp32_trial"]["valid"] == 0.85
    summary = summarise(picked)["speakers"]
    assert summary["seeds"] == [0, 1] and summary["seeds_without_low_bit"] == [1]
    assert summary["low_bit"]["valid"]["n"] == 1 and summary["teacher"]["valid"]["n"] == 2
    assert "(nothing at <= 2 bits in 1)" in table({"speakers": summary})


def test_every_bench_with_a_main_runs_it_under_python_m():
    # bench.ceiling once had no __main__ guard: `python -m bench.ceiling` exited 0 having run nothing
    import ast
    from pathlib import Path

    missing = []
    for path in sorted((Path(__file__).parents[2] / "bench").glob("*.py")):
        tree = ast.parse(path.read_text())
        has_main = any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
        guarded = any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) and "main()" in ast.unparse(n)
                      for n in tree.body)
        if has_main and not guarded:
            missing.append(path.name)
    assert missing == []


def test_per_accent_accuracy_averages_over_speakers_and_seeds():
    from bench.speakers import by_accent

    def run(a: float, b: float) -> dict:
        rows = {"en-gb-x-rp_m1_r140_p50": {"student": a, "teacher": 0.9, "clips": 62},
                "en-gb-x-rp_f2_r200_p25": {"student": b, "teacher": 0.8, "clips": 62},
                "en-us_ed_r160_p30": {"student": 1.0, "teacher": 1.0, "clips": 62}}
        return {"valid": rows, "test": rows}

    accents = by_accent({0: run(0.4, 0.6), 1: run(0.6, 0.8)})["test"]
    assert list(accents) == ["en-gb-x-rp", "en-us"]
    assert accents["en-gb-x-rp"]["speakers"] == 2
    assert accents["en-gb-x-rp"]["student"] == pytest.approx(0.6)
    assert accents["en-gb-x-rp"]["teacher"] == pytest.approx(0.85)
    assert accents["en-us"] == {"speakers": 1, "student": 1.0, "teacher": 1.0}
