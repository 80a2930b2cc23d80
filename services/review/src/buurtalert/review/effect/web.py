"""Effect's pages in the console, registered through ``console_app(extensions=...)``:
the municipality's incidents, an incident with its outcome form (also the web API:
``Accept: application/json`` and the session's ``X-CSRF-Token``), and the dashboard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from buurtalert.review.effect.charts import mix_chart, weekly_chart
from buurtalert.review.effect.figures import HEADINGS, as_csv, rows
from buurtalert.review.effect.outcomes import OutcomeDesk
from buurtalert.review.effect.polls import results
from buurtalert.review.effect.rules import (
    EFFECT_ROLES,
    IncidentView,
    figures_for,
    may_give_outcome,
    parse_outcome,
    polls_for,
)
from buurtalert.review.effect.stores import Polls
from buurtalert.review.effect.texts import effect_text
from buurtalert.review.handlers import Session
from buurtalert.review.web import Kit, language_of, wants_json
from buurtalert.shared.models import IncidentOutcome, OutcomeKind, utcnow

#: The figures of a municipality since a date (disclosed), or None without a directory.
Figures = Callable[[str, datetime], Awaitable[dict[str, Any] | None]]
#: The dashboard's period when none is asked for.
DEFAULT_WEEKS = 12

STATUS = {"forbidden": 403, "not_found": 404, "invalid": 422, "already_given": 409}


def incident_json(incident: IncidentView, outcome: IncidentOutcome | None) -> dict[str, Any]:
    return {
        "id": incident.id,
        "reference": incident.reference,
        "district": incident.district,
        "opened_at": incident.opened_at.isoformat() if incident.opened_at else None,
        "reports": incident.reports,
        "groups": [f"{m}/{g}" for m, g in incident.groups],
        "outcome": outcome.model_dump(mode="json") if outcome else None,
        "fed_back_at": incident.fed_back_at.isoformat() if incident.fed_back_at else None,
    }


def since_of(request: Request) -> datetime:
    raw = request.query_params.get("since", "")
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return utcnow() - timedelta(weeks=DEFAULT_WEEKS)


def effect_routes(desk: OutcomeDesk, figures: Figures, polls: Polls) -> Callable[[Kit], Sequence[Route]]:
    """The routes, given the console's :class:`Kit`."""

    def routes(kit: Kit) -> Sequence[Route]:
        def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
            language = language_of(request)
            return kit.page(request, name, status, e=lambda key: effect_text(key, language), **context)

        async def incidents(request: Request, session: Session) -> Response:
            found = await desk.recent(session.user)
            if wants_json(request):
                return JSONResponse({"incidents": [incident_json(i, None) for i in found]})
            return render(request, "effect/incidents.html", session=session, incidents=found)

        async def incident(request: Request, session: Session) -> Response:
            found = await desk.incident(session.user, request.path_params["ref"])
            if found is None:
                return refuse(request, session, "not_found")
            outcome = await desk.outcomes.get(found.id)
            if wants_json(request):
                return JSONResponse(incident_json(found, outcome))
            return render(
                request,
                "effect/incident.html",
                session=session,
                incident=found,
                outcome=outcome,
                kinds=list(OutcomeKind),
                may_give=may_give_outcome(session.user.role),
                notice=request.query_params.get("notice"),
            )

        async def give(request: Request, session: Session) -> Response:
            if wants_json(request) and "application/json" in request.headers.get("content-type", ""):
                try:
                    body = await request.json()
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    return JSONResponse({"error": "invalid", "detail": "a JSON object"}, status_code=422)
                raw, note = str(body.get("outcome") or ""), str(body.get("note") or "")
            else:
                form = await request.form()
                raw, note = str(form.get("outcome") or ""), str(form.get("note") or "")
            source: Literal["console", "api"] = "api" if wants_json(request) else "console"
            given = await desk.give(
                session.user, request.path_params["ref"], parse_outcome(raw), note, source
            )
            if given.refused is not None:
                if wants_json(request):
                    return JSONResponse(
                        {
                            "error": given.refused,
                            "detail": given.detail,
                            "outcome": given.outcome.model_dump(mode="json") if given.outcome else None,
                        },
                        status_code=STATUS[given.refused],
                    )
                return refuse(request, session, given.refused)
            assert given.outcome is not None
            if wants_json(request):
                return JSONResponse({"outcome": given.outcome.model_dump(mode="json")})
            return RedirectResponse(
                f"/incidents/{given.outcome.incident_id}?notice=outcome_given", status_code=303
            )

        def refuse(request: Request, session: Session, why: str) -> Response:
            if wants_json(request):
                return JSONResponse({"error": why}, status_code=STATUS[why])
            key = {"forbidden": "forbidden", "not_found": "not_found", "invalid": "invalid"}.get(why)
            if key is None:  # already given: back to the incident, which shows its outcome
                return RedirectResponse(
                    f"/incidents/{request.path_params['ref']}?notice=already_given", status_code=303
                )
            return kit.page(request, "error.html", STATUS[why], session=session, key=key, detail="")

        async def shown_figures(request: Request, session: Session) -> dict[str, Any] | Response:
            if session.user.role not in EFFECT_ROLES:
                return kit.page(request, "error.html", 403, session=session, key="forbidden", detail="")
            shown = await figures(session.user.municipality, since_of(request))
            if shown is None:
                return kit.page(request, "error.html", 404, session=session, key="not_found", detail="")
            return figures_for(session.user, shown)

        async def poll_results(municipality: str) -> list[dict[str, Any]]:
            found = await polls.of(municipality)
            return [results(poll, await polls.answers(poll.id)) for poll in found]

        async def dashboard(request: Request, session: Session) -> Response:
            shown = await shown_figures(request, session)
            if isinstance(shown, Response):
                return shown
            polled = polls_for(session.user, await poll_results(session.user.municipality))
            if wants_json(request):
                return JSONResponse({**shown, "polls": polled})
            language = language_of(request)
            return render(
                request,
                "effect/dashboard.html",
                session=session,
                shown=shown,
                headings=HEADINGS,
                rows=rows(shown),
                polls=polled,
                since=shown["since"][:10],
                charts=[
                    weekly_chart(shown, "reports_per_1000", effect_text("chart.reports", language)),
                    weekly_chart(shown, "alerts_per_1000", effect_text("chart.alerts", language)),
                    mix_chart(shown, "outcomes", effect_text("chart.outcomes", language)),
                    mix_chart(shown, "moderation", effect_text("chart.moderation", language)),
                ],
            )

        async def dashboard_csv(request: Request, session: Session) -> Response:
            shown = await shown_figures(request, session)
            if isinstance(shown, Response):
                return shown
            name = f"effect-{shown['municipality']}-{shown['since'][:10]}.csv"
            return Response(
                as_csv(shown),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )

        return [
            Route("/effect", kit.logged_in(dashboard), methods=["GET"]),
            Route("/effect.csv", kit.logged_in(dashboard_csv), methods=["GET"]),
            Route("/incidents", kit.logged_in(incidents), methods=["GET"]),
            Route("/incidents/{ref}", kit.logged_in(incident), methods=["GET"]),
            Route("/incidents/{ref}/outcome", kit.logged_in(give), methods=["POST"]),
        ]

    return routes
