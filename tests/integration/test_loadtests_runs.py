"""Real locust runs of loadtests/locustfile.py against the whole API in this process (the real
model): a 2-process open-loop run sends the mix of a 1-process run, and the exit code is the
SLO verdict, with shed 503s counted apart from errors; summarize.py reads locust's own files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.inputs import write_uploads
from loadtests.run import locust
from loadtests.slo import Series
from loadtests.summarize import AGGREGATED, read_stats, summarize
from tests.integration.api_server import InProcessServer
from tests.serving import free_port

pytestmark = pytest.mark.slow
SMALL = {"LOADTEST_BUCKETS": "0.25MP", "LOADTEST_SEED": "runs"}


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """One request at a time: the rest is shed with 503 and Retry-After."""
    with InProcessServer(tmp_path_factory.mktemp("busy"), env={"MAX_CONCURRENCY": "1"}) as server:
        yield server


def mix(out: Path) -> Counter[str]:
    """Requests per endpoint, from locust's own stats."""
    counts: Counter[str] = Counter()
    for row in read_stats(out / "locust_stats.csv"):
        if row.name != AGGREGATED:
            counts[row.name.split(" [")[0]] += row.requests
    return counts


def test_two_processes_send_the_mix_of_one(server: InProcessServer, tmp_path: Path) -> None:
    write_uploads(server.settings.upload_dir)
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"processes-{processes}"
        extra = ["--rate", "1@24", "--processes", str(processes), "--slo-error-ratio", "0"]
        port = str(free_port())  # the master's, apart from any other locust run's
        extra += ["--master-bind-port", port, "--master-port", port]
        code = locust(server.url, out, SMALL, extra, timeout=300)
        assert code == 0, (out / "locust.out").read_text()
        runs[processes] = (mix(out), Series.load(out / "locust_series.json"))
    (one, one_series), (two, two_series) = runs[1], runs[2]
    assert sum(one.values()) == sum(two.values()) == 24  # 1 req/s for 24 s, all answered
    assert len(one) == 7  # every endpoint of the mix
    for endpoint in one:
        share_one, share_two = one[endpoint] / 24, two[endpoint] / 24
        assert abs(share_one - share_two) <= 0.05, (endpoint, one, two)
    # the same replays: a third of the image requests repeat one of that process's recent ones
    assert one_series.cache["hit"] > 0 and two_series.cache["hit"] > 0
    assert two_series.stats().sent == one_series.stats().sent == 24  # merged from both workers


@pytest.mark.parametrize(
    ("slo", "code", "said"),
    [
        (["--slo-p95", "600000", "--slo-shed-ratio", "1"], 0, ["SLO verdict: PASS", "shed ratio"]),
        (
            ["--slo-p95", "1", "--slo-shed-is-error"],
            1,
            ["SLO verdict: FAIL", "p95 /remove-background", "error ratio"],
        ),
    ],
)
def test_the_exit_code_is_the_slo_verdict(
    busy_server: InProcessServer, tmp_path: Path, slo: list[str], code: int, said: list[str]
) -> None:
    env = {**SMALL, "LOADTEST_MIX": "RemoveBackgroundUser", "LOADTEST_DEFAULT_OPTIONS": "true"}
    assert locust(busy_server.url, tmp_path, env, ["--rate", "10@3", *slo], timeout=300) == code
    output = (tmp_path / "locust.out").read_text()
    verdict = next(line for line in output.splitlines() if line.startswith("SLO verdict"))
    assert all(text in verdict for text in said), verdict
    stats = Series.load(tmp_path / "locust_series.json").stats()
    assert stats.shed > 0 and stats.error == 0 and stats.ok > 0  # 503 + Retry-After: shed
    text, _ = summarize(tmp_path)  # locust's CSVs: the stats, the history and the failures
    assert "; peak 1 users" in text and verdict in text
    assert f"| POST /remove-background [0.25MP] | {stats.answered} |" in text
    assert "| POST /remove-background [0.25MP] | 503 overloaded | HTTP 503 overloaded |" in text
