"""The step plan behind StepLoadShape, free of locust (importing locust monkey-patches).

Environment (read when locust creates the shape):

    STEP_USERS    users added at each step                [2]
    STEP_SECONDS  length of a step, seconds               [30]
    MAX_USERS     ceiling                                 [10: every user class gets a user]
    RUN_SECONDS   whole run; the test stops by itself     [300]
    SPAWN_RATE    users started per second within a step  [STEP_USERS: a step is immediate]
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULTS = {"STEP_USERS": 2, "STEP_SECONDS": 30, "MAX_USERS": 10, "RUN_SECONDS": 300}


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else float(default)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise ValueError(f"{name} must be a positive number, got {raw!r}")
    return value


@dataclass(frozen=True)
class StepPlan:
    step_users: int
    step_seconds: float
    max_users: int
    run_seconds: float
    spawn_rate: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StepPlan:
        env = os.environ if env is None else env
        step_users = int(_positive(env, "STEP_USERS", DEFAULTS["STEP_USERS"]))
        return cls(
            step_users=step_users,
            step_seconds=_positive(env, "STEP_SECONDS", DEFAULTS["STEP_SECONDS"]),
            max_users=int(_positive(env, "MAX_USERS", DEFAULTS["MAX_USERS"])),
            run_seconds=_positive(env, "RUN_SECONDS", DEFAULTS["RUN_SECONDS"]),
            spawn_rate=_positive(env, "SPAWN_RATE", step_users),
        )

    def users_at(self, run_time: float) -> int | None:
        """Users wanted `run_time` seconds in; None once the run is over."""
        if run_time >= self.run_seconds:
            return None
        step = int(run_time // self.step_seconds) + 1
        return min(self.max_users, step * self.step_users)

    def tick(self, run_time: float) -> tuple[int, float] | None:
        users = self.users_at(run_time)
        return None if users is None else (users, self.spawn_rate)

    def describe(self) -> str:
        return (
            f"step load: +{self.step_users} users every {self.step_seconds:g}s "
            f"up to {self.max_users}, stop at {self.run_seconds:g}s"
        )
