"""Each overlay's memory budget fits its container: the admitted image memory plus what the
idle pod needs stays within the memory limit (else the pod is OOM-killed under load)."""

from __future__ import annotations

import pytest

from application.admission import POD_RESERVE_MB
from tests.k8s.test_manifests import OVERLAYS, api_config, api_container, render

UNITS = {"Mi": 1, "Gi": 1024}


def mebibytes(quantity: str) -> int:
    return int(quantity[:-2]) * UNITS[quantity[-2:]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_budget_plus_the_idle_pod_fits_the_limit(overlay: str) -> None:
    docs = render(overlay)
    budget = int(api_config(docs)["MEMORY_BUDGET_MB"])
    limit = mebibytes(api_container(docs)["resources"]["limits"]["memory"])
    assert budget + POD_RESERVE_MB <= limit, f"{overlay}: {budget} MiB + reserve > {limit} MiB"
    assert budget >= 512, "a budget this small refuses ordinary photos"
