"""StepLoadShape: +STEP_USERS users every STEP_SECONDS up to MAX_USERS; stops at RUN_SECONDS.

The plan and its environment variables are in steps.py (kept free of locust).
"""

from __future__ import annotations

from collections.abc import Mapping

from locust import LoadTestShape

from loadtests.steps import StepPlan


class StepLoadShape(LoadTestShape):
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.plan = StepPlan.from_env(env)

    def tick(self) -> tuple[int, float] | None:
        return self.plan.tick(self.get_run_time())

    def describe(self) -> str:
        return self.plan.describe()
