"""What `search.warm_start` and `search.early_stop` need from the space and the base schedule (#19).

Ray-free and below `space` (which calls `search_problems` from `check_space`), so the schema
reports these with the other problems of the file, each naming its key and value.
"""
from __future__ import annotations


from quads_search.config import ParamSpace, SweepConfig
from quads_search.core.schedule import resolve_schedule
from quads_search.errors import UserError
from quads_search.quant.bits import VALID_BITS


def bit_widths(name: str, param: ParamSpace) -> tuple[int, ...]:
    """Every width a `bits.*` parameter may take (a choice, or each integer of an int range)."""
    if param.choice is not None:
        widths = tuple(param.choice)
    elif param.int is not None:
        widths = tuple(range(param.int[0], param.int[1] + 1))
    else:
        raise UserError(f"space.{name}: bit widths must be a choice or an int range")
    bad = [w for w in widths if w not in VALID_BITS]
    if bad:
        raise UserError(f"space.{name}: {bad} are no bit widths; valid: {list(VALID_BITS)}")
    return widths


def allocation_problems(config: SweepConfig) -> list[str]:
    """What keeps the space from a bit allocation: no `bits.*` parameter, or one that is no set of widths."""
    names = [n for n in config.space if n.startswith("bits.")]
    problems = [] if names else ["space: has no bits.* parameter, so there are no bit widths to allocate"]
    for name in names:
        try:
            bit_widths(name, config.space[name])
        except UserError as exc:
            problems.append(str(exc))
    return problems


def search_problems(config: SweepConfig) -> list[str]:
    """A warm start needs widths to allocate; an early stop, a stage before the base schedule's last."""
    problems = allocation_problems(config) if config.search.warm_start == "sensitivity" else []
    stop = config.search.early_stop
    stages = len(resolve_schedule(config.training)) if stop is not None else 0
    if stop is not None and stop.after_stage >= stages:
        problems.append(f"search.early_stop.after_stage: must be below the base schedule's {stages} stages "
                        f"(a trial past its last stage is finished, not stopped), got {stop.after_stage}")
    return problems
