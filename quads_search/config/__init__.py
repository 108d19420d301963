"""Configuration: the YAML schema (dataclasses), reading YAML with overrides, and conversion.

config is the bottom layer: it imports nothing of the training core or the sweep.
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
