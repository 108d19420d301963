"""Configuration, the bottom layer: it imports nothing but `errors` and `metrics`.

  schema    the frozen dataclasses of a space YAML, each section range-checking itself
  loading   safe YAML with line numbers, `base:` inheritance, `--set` and `--smoke` overrides
  convert   raw mappings into the dataclasses, every problem collected with its key and line
  units     bit widths, sample rate and log-mel frames: the units every layer counts in
"""
from quads_search.config.convert import build, run_config_from_dict, to_dict
from quads_search.config.loading import (
                                        apply_overrides,
                                        load_sweep_config,
                                        read_yaml,
                                        set_dotted,
)
from quads_search.config.schema import (
                                        CycleSchedule,
                                        DatasetConfig,
                                        LossWeights,
                                        ModelConfig,
                                        ParamSpace,
                                        PretuneConfig,
                                        QuantizationConfig,
                                        RunConfig,
                                        SchedulePreset,
                                        SearchConfig,
                                        StageConfig,
                                        StageKind,
                                        StudentConfig,
                                        SweepConfig,
                                        TeacherConfig,
                                        TrainingConfig,
)

__all__ = ["CycleSchedule", "DatasetConfig", "LossWeights", "ModelConfig", "ParamSpace", "PretuneConfig",
           "QuantizationConfig", "RunConfig", "SchedulePreset", "SearchConfig", "StageConfig", "StageKind",
           "StudentConfig", "SweepConfig", "TeacherConfig", "TrainingConfig", "apply_overrides", "build",
           "load_sweep_config", "read_yaml", "run_config_from_dict", "set_dotted", "to_dict"]
