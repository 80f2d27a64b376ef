"""The promotion API on the collector's server, answered from memory in milliseconds.

- `GET /api/promotion?userId=|anonymousId=&placement=&variant=`: for each running experiment on
  the placement (every placement when none is given), the user's variant and its content;
  the user's recommended products and best send time.
- `GET /v1/experiments/{key}/assignment?userId=|anonymousId=&variant=`: one experiment.

Any valid key may call them (apps hold only a write key); the answer is about the one user
asked for and names none of their segments, so it tells a caller nothing about anyone else.
Every served variant lands one `Experiment Viewed` exposure (ewh/promotion/exposure.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ewh.collector.access import admit
from ewh.collector.http_io import HttpError, json_response
from ewh.collector.intake import Intake
from ewh.collector.keys import KeyRing, Scope, key_from_header
from ewh.collector.responder import Handler
from ewh.collector.settings import CollectorSettings
from ewh.common.clock import utc_now
from ewh.promotion.assignment import Decision, decide
from ewh.promotion.experiments import Experiment, load_experiments
from ewh.promotion.exposure import ExposureLog
from ewh.promotion.snapshot import Snapshot, SnapshotHolder

log = logging.getLogger("ewh.promotion")
MAX_ID_LENGTH = 256
NONE = orjson.Fragment(b"[]")


class PromotionService:
    """What the routes share: the experiments (loaded at start), the snapshot, the exposure log."""

    def __init__(self, experiments: dict[str, Experiment], holder: SnapshotHolder,
                 exposures: ExposureLog) -> None:
        self.experiments = experiments
        self.holder = holder
        self.exposures = exposures

    async def stop(self) -> None:
        await self.holder.stop()
        await self.exposures.stop()


async def start_promotion(settings: CollectorSettings, intake: Intake) -> PromotionService:
    """Load experiments/*.yml (a bad file stops the server with its name and field) and the
    serving copy's snapshot, and start watching for publishes."""
    experiments = load_experiments(settings.experiments_dir)
    holder = SnapshotHolder(settings.serving_path, settings.promotion_reload_seconds)
    await holder.start()
    log.info("promotion: %d experiments from %s", len(experiments), settings.experiments_dir)
    exposures = ExposureLog(intake)
    exposures.start()
    return PromotionService(experiments, holder, exposures)


def promotion_routes() -> list[Route]:
    return [
        Route("/api/promotion", _any_key(_promotion), methods=["GET"]),
        Route("/v1/experiments/{key}/assignment", _any_key(_assignment), methods=["GET"]),
    ]


def _any_key(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Like responder.endpoint, but whichever scope the presented key has is enough: write,
    read and admin keys may all ask for decisions (the key's rate limit still applies)."""

    async def run(request: Request) -> Response:
        request_id = uuid.uuid4().hex[:16]
        try:
            key = key_from_header(request)
            keys: KeyRing = request.app.state.keys
            caller = keys.identify(key) if key else None
            # an unknown or missing key: admit answers 401 in its usual words
            await admit(request, caller.scope if caller else Scope.READ, key)
            return await handler(request, request_id)
        except HttpError as error:
            return error.response(request_id)

    return run


def _unit(request: Request) -> tuple[str, str]:
    """("userId", id) or ("anonymousId", id): who the decision is for."""
    params = request.query_params
    for kind in ("userId", "anonymousId"):
        value = params.get(kind)
        if value is not None:
            if not value or len(value) > MAX_ID_LENGTH:
                raise HttpError(400, "invalid_request",
                                f"{kind} must be 1 to {MAX_ID_LENGTH} characters")
            return kind, value
    raise HttpError(400, "invalid_request", "pass userId (or anonymousId for a visitor)")


def _service(request: Request) -> PromotionService:
    return request.app.state.promotion


async def _decide(request: Request, request_id: str,
                  experiments: list[Experiment]) -> tuple[Snapshot, str | None, list[Decision]]:
    kind, unit = _unit(request)
    service = _service(request)
    snapshot = service.holder.current  # read once: the whole answer comes from one publish
    user_key = snapshot.user_key(unit if kind == "userId" else None,
                                 unit if kind == "anonymousId" else None)
    segments = snapshot.segments.get(user_key, frozenset()) if user_key else frozenset()
    forced = request.query_params.get("variant")
    now = utc_now()
    decisions = [decide(e, unit, segments, now, forced) for e in experiments]
    service.exposures.submit(decisions, kind, unit, now)
    return snapshot, user_key, decisions


def _decision_json(decision: Decision) -> dict[str, Any]:
    experiment = decision.experiment
    variant = experiment.variant(decision.variant) if decision.variant else None
    return {"experiment": experiment.key, "placement": experiment.placement,
            "variant": decision.variant, "reason": decision.reason,
            "content": variant.content if variant else None}


async def _promotion(request: Request, request_id: str) -> Response:
    placement = request.query_params.get("placement")
    experiments = [e for e in _service(request).experiments.values()
                   if placement is None or e.placement == placement]
    snapshot, user_key, decisions = await _decide(request, request_id, experiments)
    return json_response({
        "experiments": [_decision_json(d) for d in decisions if d.variant is not None],
        "recommendations": snapshot.recommendations.get(user_key, NONE) if user_key else NONE,
        "send_time": snapshot.send_time(user_key).as_json(),
        "published_at": snapshot.published_at,
    }, 200, request_id)


async def _assignment(request: Request, request_id: str) -> Response:
    key = request.path_params["key"]
    experiment = _service(request).experiments.get(key)
    if experiment is None:
        raise HttpError(404, "unknown_experiment", f"no experiment {key!r} (experiments/*.yml)")
    forced = request.query_params.get("variant")
    if forced is not None and experiment.variant(forced) is None:
        raise HttpError(400, "invalid_request",
                        f"variant {forced!r} is not a variant of {key}: "
                        f"{', '.join(v.name for v in experiment.variants)}")
    _, _, decisions = await _decide(request, request_id, [experiment])
    return json_response(_decision_json(decisions[0]), 200, request_id)
