"""`search.early_stop` in a Ray Tune sweep: a FIFO scheduler that stops hopeless trials after stage K.

Each trial's stage reports carry `planned_size_mb` (the trainable computes it from the
configuration); the scheduler keeps every trial's stage-K score and applies
`stopping.dominating_witness` as each arrives. Returning STOP ends the trial at once (its
worker is blocked in that report), Ray Tune hands the searcher the stage report, which has
no final `status` (QuadsOptunaSearch tells Optuna PRUNED), and the recorder writes the row as
`stopped` with `reasons[trial_id]`. Reference trials are witnesses but never stopped: they
anchor the front. The scores live in memory: a resumed sweep starts with none.
"""
from __future__ import annotations

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from quads_search.config.schema import EarlyStopConfig
from quads_search.results import KIND_KEY
from quads_search.sweep.stopping import PLANNED_SIZE_KEY, StageScore, dominating_witness, stop_reason


class EarlyStopScheduler(FIFOScheduler):
    def __init__(self, rule: EarlyStopConfig):
        super().__init__()
        self.rule = rule
        self.scores: dict[str, StageScore] = {}
        self.reasons: dict[str, str] = {}  # trial id -> why it was stopped; the recorder reads it

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if result.get("stage") != self.rule.after_stage:
            return TrialScheduler.CONTINUE
        mine = StageScore(trial.trial_id, result[PLANNED_SIZE_KEY], result["stage_valid_accuracy"])
        earlier = list(self.scores.values())
        self.scores[trial.trial_id] = mine
        if trial.config.get(KIND_KEY) == "reference":
            return TrialScheduler.CONTINUE
        witness = dominating_witness(mine, earlier, self.rule)
        if witness is None:
            return TrialScheduler.CONTINUE
        self.reasons[trial.trial_id] = stop_reason(mine, witness, self.rule.after_stage)
        return TrialScheduler.STOP
