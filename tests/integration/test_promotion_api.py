"""The promotion API over real HTTP (`ewh collect`), deciding from a published serving copy.

Weights, targeting and the forced variant are checked against numbers worked out from the
experiment files; exposures are counted in the real landing files and after a real load.
"""

from __future__ import annotations

import hashlib
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests
from collector_process import READ_KEY, WRITE_KEY, Collector, running_collector

from ewh.cli.main import main
from ewh.ingest.landing import closed_landing_files
from ewh.promotion.assignment import pick_variant
from ewh.promotion.experiments import load_experiments
from ewh.segments.catalog import SegmentSpec
from ewh.segments.serving import publish_serving_copy

SPEC = SegmentSpec(name="seg_vip", rule="VIPs.", owner="crm-team", refresh="daily",
                   exported=False, description="", unique_id="model.x.seg_vip")
APP = (WRITE_KEY, "")  # the app's write key is enough

EXPERIMENTS = {
    "split_70_30": """
        key: split_70_30
        placement: hero
        variants:
          - {name: control, weight: 70, content: {headline: "Hello"}}
          - {name: B, weight: 30, content: {headline: "Welcome back"}}
        start: 2020-01-01T00:00:00Z
        end: 2099-01-01T00:00:00Z
        metrics: {primary: purchase, guardrails: [revenue_per_user]}
    """,
    "vip_only": """
        key: vip_only
        placement: footer
        variants:
          - {name: control, weight: 1}
          - {name: B, weight: 1, content: {coupon: VIP10}}
        targeting: {include_segments: [vip]}
        start: 2020-01-01T00:00:00Z
        end: 2099-01-01T00:00:00Z
        metrics: {primary: purchase}
    """,
    "not_vip": """
        key: not_vip
        placement: footer
        variants:
          - {name: control, weight: 1}
          - {name: B, weight: 1}
        targeting: {exclude_segments: [seg_vip]}
        start: 2020-01-01T00:00:00Z
        end: 2099-01-01T00:00:00Z
        metrics: {primary: purchase}
    """,
    "finished": """
        key: finished
        placement: hero
        variants:
          - {name: control, weight: 1}
          - {name: B, weight: 1}
        start: 2020-01-01T00:00:00Z
        end: 2020-02-01T00:00:00Z
        metrics: {primary: purchase}
    """,
}


def write_experiments(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, text in EXPERIMENTS.items():
        (folder / f"{key}.yml").write_text(textwrap.dedent(text))
    return folder


def build_warehouse(path: Path, generation: int = 1) -> None:
    """u00..u09 with user ids id00..id09; u00..u02 are VIPs; each user's recommendation names
    the generation, so an answer shows which publish it came from."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts; create schema if not exists segments")
        con.execute("create or replace table marts.dim_users as select "
                    "printf('u%02d', i) as user_key, printf('id%02d', i) as user_id, "
                    "case when i < 5 then 18 end as preferred_engagement_hour_utc, "
                    "case when i < 5 then 3 + (i % 2) end as preferred_engagement_weekday "
                    "from range(10) t(i)")
        con.execute("create or replace table segments.seg_vip as select user_key, user_id "
                    "from marts.dim_users where user_key < 'u03'")
        con.execute("create or replace table segments.segment_memberships as select user_key, "
                    "'seg_vip' as segment, timestamp '2026-11-01' as entered_at "
                    "from segments.seg_vip")
        con.execute("create or replace table marts.user_recommendations as select user_key, "
                    "user_id, 1 as recommendation_rank, "
                    f"'gen{generation}-' || user_key as product_id, 2.0 as score, "
                    f"'gen{generation}-seen' as evidence_product_id, "
                    f"'because you viewed gen{generation}-seen' as evidence "
                    "from marts.dim_users")


@pytest.fixture()
def promotion(tmp_path: Path) -> Iterator[Collector]:
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    build_warehouse(warehouse)
    publish_serving_copy(warehouse, serving, [SPEC])
    with running_collector(tmp_path / "landing", EWH_SERVING=str(serving),
                           EWH_EXPERIMENTS_DIR=str(write_experiments(tmp_path / "exp")),
                           EWH_PROMOTION_RELOAD_SECONDS="0.05",
                           EWH_RATE_LIMIT="") as collector:
        yield collector


def _get(collector: Collector, path: str, **params: str) -> requests.Response:
    return requests.get(f"{collector.url}{path}", params=params, auth=APP, timeout=10)


def _reference_variant(salt: str, unit: str, weights: list[tuple[str, float]]) -> str:
    """Written from the rule's words: the first 52 bits of sha256("salt:unit") over 2**52,
    against the cumulative weight shares."""
    u = (int(hashlib.sha256(f"{salt}:{unit}".encode()).hexdigest()[:16], 16) >> 12) / 2**52
    total, cumulative = sum(w for _, w in weights), 0.0
    for name, weight in weights:
        cumulative += weight / total
        if u < cumulative:
            return name
    return weights[-1][0]


def test_weights_hold_over_100k_users_and_http_answers_match(promotion: Collector,
                                                            tmp_path: Path) -> None:
    experiment = load_experiments(tmp_path / "exp")["split_70_30"]
    users = [f"user-{i}" for i in range(100_000)]
    share_b = sum(pick_variant(experiment, u) == "B" for u in users) / len(users)
    assert abs(share_b - 0.30) < 0.01
    weights = [("control", 70.0), ("B", 30.0)]
    for user in users[:200]:  # the server, the function and the rule agree, user by user
        answer = _get(promotion, "/v1/experiments/split_70_30/assignment", userId=user).json()
        assert answer["variant"] == _reference_variant("split_70_30", user, weights)
        assert answer["reason"] == "assigned"
        assert answer["content"] == {"headline": "Hello" if answer["variant"] == "control"
                                     else "Welcome back"}


def test_assignment_is_stable_across_restarts(tmp_path: Path) -> None:
    answers = []
    for _ in range(2):
        with running_collector(tmp_path / "landing",
                               EWH_EXPERIMENTS_DIR=str(write_experiments(tmp_path / "exp")),
                               EWH_SERVING=str(tmp_path / "absent.duckdb")) as collector:
            answers.append([_get(collector, "/v1/experiments/split_70_30/assignment",
                                 userId=f"p{i}").json()["variant"] for i in range(40)])
    assert answers[0] == answers[1]
    assert {"control", "B"} == set(answers[0])


def test_targeting_reads_segments_from_the_serving_copy(promotion: Collector) -> None:
    for user, vip in (("id00", True), ("id02", True), ("id03", False), ("stranger", False)):
        footer = _get(promotion, "/api/promotion", userId=user, placement="footer").json()
        keys = {e["experiment"] for e in footer["experiments"]}
        assert keys == ({"vip_only"} if vip else {"not_vip"}), user
    not_targeted = _get(promotion, "/v1/experiments/vip_only/assignment", userId="id05").json()
    assert not_targeted == {"experiment": "vip_only", "placement": "footer", "variant": None,
                            "reason": "not_targeted", "content": None}
    finished = _get(promotion, "/v1/experiments/finished/assignment", userId="id05").json()
    assert finished["reason"] == "not_running"
    hero = _get(promotion, "/api/promotion", userId="id05", placement="hero").json()
    assert [e["experiment"] for e in hero["experiments"]] == ["split_70_30"]


def test_answer_carries_recommendations_and_send_time_with_fallback(promotion: Collector) -> None:
    known = _get(promotion, "/api/promotion", userId="id01", placement="hero").json()
    assert known["recommendations"] == [{"product_id": "gen1-u01", "score": 2.0,
                                         "because_of": "gen1-seen",
                                         "evidence": "because you viewed gen1-seen"}]
    assert known["send_time"] == {"hour_utc": 18, "weekday": 4, "source": "history"}
    # u07 has no history: the population's most common hour (18) and weekday (u00, u02, u04
    # prefer 3; u01, u03 prefer 4 -> 3)
    fallback = _get(promotion, "/api/promotion", userId="id07").json()
    assert fallback["send_time"] == {"hour_utc": 18, "weekday": 3, "source": "population"}
    visitor = _get(promotion, "/api/promotion", anonymousId="visitor-1", placement="hero").json()
    assert visitor["recommendations"] == []
    assert visitor["experiments"][0]["variant"] == _reference_variant(
        "split_70_30", "visitor-1", [("control", 70.0), ("B", 30.0)])


def test_keys_and_bad_requests(promotion: Collector) -> None:
    url = f"{promotion.url}/api/promotion"
    assert requests.get(url, params={"userId": "id01"}, timeout=5).status_code == 401
    assert requests.get(url, params={"userId": "id01"}, auth=("nope", ""),
                        timeout=5).status_code == 401
    assert requests.get(url, params={"userId": "id01"}, auth=(READ_KEY, ""),
                        timeout=5).status_code == 200
    assert _get(promotion, "/api/promotion").status_code == 400
    assert _get(promotion, "/v1/experiments/nope/assignment", userId="a").status_code == 404
    bad = _get(promotion, "/v1/experiments/split_70_30/assignment", userId="a", variant="Z")
    assert bad.status_code == 400 and "control, B" in bad.json()["message"]
    # the answer names no segment: nothing about who else is a VIP
    assert "seg_vip" not in _get(promotion, "/api/promotion", userId="id00").text


def _landed_exposures(landing: Path) -> list[str]:
    lines = []
    for path in closed_landing_files(landing):
        lines += [line for line in path.read_text().splitlines() if "Experiment Viewed" in line]
    return lines


def test_exposure_is_logged_once_across_restarts_and_forced_views_are_marked(
        tmp_path: Path) -> None:
    landing, experiments = tmp_path / "landing", write_experiments(tmp_path / "exp")
    env = {"EWH_EXPERIMENTS_DIR": str(experiments), "EWH_SERVING": str(tmp_path / "x.duckdb")}
    for _ in range(2):  # two server lives, three views each
        with running_collector(landing, **env) as collector:
            for _ in range(3):
                _get(collector, "/v1/experiments/split_70_30/assignment", userId="alice")
            forced = _get(collector, "/v1/experiments/split_70_30/assignment",
                          userId="alice", variant="B").json()
            assert forced["variant"] == "B" and forced["reason"] == "forced"
    lines = _landed_exposures(landing)
    assert len(lines) == 4  # one per server life for the assignment and for the forced view
    warehouse = tmp_path / "w.duckdb"
    assert main(["load", str(landing / "*.ndjson"), "--warehouse", str(warehouse)]) == 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select payload->>'$.properties.variation_name', "
            "payload->>'$.properties.forced_variant' from raw.events "
            "where payload->>'$.event' = 'Experiment Viewed' and "
            "payload->>'$.userId' = 'alice' order by 2 nulls first").fetchall()
    expected = _reference_variant("split_70_30", "alice", [("control", 70.0), ("B", 30.0)])
    assert rows == [(expected, None), ("B", "true")]


def test_publish_under_load_swaps_whole_snapshots(promotion: Collector, tmp_path: Path) -> None:
    """Clients ask continuously while two publishes replace the serving copy: no error, and
    every answer's recommendation and published_at belong to the same publish."""
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    stop = threading.Event()

    def client(n: int) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                answer = session.get(f"{promotion.url}/api/promotion", auth=APP, timeout=10,
                                     params={"userId": f"id0{n}", "placement": "hero"})
                if answer.status_code != 200:
                    errors.append(f"{answer.status_code} {answer.text}")
                    continue
                body = answer.json()
                seen.add((body["published_at"], body["recommendations"][0]["product_id"][:4]))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    for generation in (2, 3):
        time.sleep(0.4)
        build_warehouse(warehouse, generation)
        publish_serving_copy(warehouse, serving, [SPEC])
    time.sleep(0.6)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    generations = {gen for _, gen in seen}
    assert generations == {"gen1", "gen2", "gen3"}
    by_publish: dict[str, set[str]] = {}
    for published_at, gen in seen:
        by_publish.setdefault(published_at, set()).add(gen)
    assert all(len(gens) == 1 for gens in by_publish.values()), by_publish


def test_visitor_exposure_follows_stitching_and_forced_views_stay_out_of_results(
        tmp_path: Path) -> None:
    """A visitor (anonymousId) is assigned and exposed, then identifies as carol: the
    warehouse counts the exposure for carol. dave only ever saw a forced variant: he is in
    no result row. Real collector, real load, real dbt build."""
    from dbt_runner import run_dbt

    landing = tmp_path / "landing"
    env = {"EWH_EXPERIMENTS_DIR": str(write_experiments(tmp_path / "exp")),
           "EWH_SERVING": str(tmp_path / "absent.duckdb")}
    with running_collector(landing, **env) as collector:
        visitor = _get(collector, "/v1/experiments/split_70_30/assignment",
                       anonymousId="visitor-9").json()["variant"]
        _get(collector, "/v1/experiments/split_70_30/assignment", userId="dave", variant="B")
        identify = requests.post(f"{collector.url}/v1/identify", auth=APP, timeout=10,
                                 json={"userId": "carol", "anonymousId": "visitor-9",
                                       "traits": {"plan": "free"}})
        assert identify.status_code == 200
    warehouse = tmp_path / "w.duckdb"
    assert main(["load", str(landing / "*.ndjson"), "--warehouse", str(warehouse)]) == 0
    run_dbt(warehouse, tmp_path / "dbt", "build", "--select", "+fct_experiment_results",
            "--indirect-selection", "cautious", "--exclude", "test_type:unit")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        exposures = con.execute(
            "select user_key, variation, is_forced_exposure from intermediate.int_events_stitched"
            " where event_type = 'experiment_exposure' order by user_key").fetchall()
        results = con.execute("select variant, exposed_users from marts.fct_experiment_results"
                              " where experiment_id = 'split_70_30'").fetchall()
    assert exposures == [("carol", visitor, False), ("dave", "B", True)]
    assert results == [(visitor, 1)]


def test_browsers_may_ask_with_the_write_key_but_not_read_segments(tmp_path: Path) -> None:
    origin = "https://shop.example"
    with running_collector(tmp_path / "landing", EWH_CORS_ORIGINS=origin,
                           EWH_EXPERIMENTS_DIR=str(write_experiments(tmp_path / "exp")),
                           EWH_SERVING=str(tmp_path / "absent.duckdb")) as collector:
        preflight = {"Origin": origin, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"}
        answer = requests.options(f"{collector.url}/api/promotion", headers=preflight,
                                  timeout=5)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == origin
        got = requests.get(f"{collector.url}/api/promotion", params={"userId": "u1"},
                           auth=APP, headers={"Origin": origin}, timeout=5)
        assert got.status_code == 200 and got.headers["access-control-allow-origin"] == origin
        segments = requests.options(f"{collector.url}/v1/segments", headers=preflight,
                                    timeout=5)
        assert "access-control-allow-origin" not in segments.headers
