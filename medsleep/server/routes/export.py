"""The FHIR Bulk Data Access API (``$export``) over the compliance export.

    GET    /fhir/$export, /fhir/Patient/$export   kick-off: 202 + Content-Location
    GET    /fhir/$export-status/{job}             202 + X-Progress + Retry-After, then the manifest
    DELETE /fhir/$export-status/{job}             cancel: 202, the files are deleted
    GET    /fhir/$export-file/{job}/{name}        an output file (bearer token required)

Parameters: ``_outputFormat`` (ndjson), ``_type`` (Observation, Provenance, AuditEvent),
``_since`` (on lastUpdated: what medsleep stored or made from then on, see
``export.updated``) and medsleep's
``includeArchived=true``. Everything else is a 400: a filter the server would ignore would
export more PHI than asked for.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from medsleep.export import ExportRequest
from medsleep.fhir.outcome import issue, operation_outcome
from medsleep.server.context import Context
from medsleep.server.deps import Base, Ctx, ReadToken
from medsleep.server.export_jobs import ExportJobs, JobNotFoundError
from medsleep.server.fhir_http import FhirError, FhirResponse
from medsleep.store.handle import Store
from medsleep.timefmt import parse_iso_ms

router = APIRouter(tags=["bulk data"])
OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
EXPORT_TYPES = ("Observation", "Provenance", "AuditEvent")
_PARAMS = ("_outputFormat", "_type", "_since", "includeArchived")
RETRY_AFTER_S = 1


def _jobs(ctx: Context) -> tuple[ExportJobs, Path]:
    settings = ctx.settings
    if ctx.exports is None or settings.archive_root is None:
        raise FhirError(501, "not-supported", "this server was started without an export folder")
    return ctx.exports, settings.archive_root


def _types(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    types = tuple(t.strip() for t in value.split(",") if t.strip())
    unknown = sorted(set(types) - set(EXPORT_TYPES))
    if unknown or not types:
        raise FhirError(
            400,
            "not-supported",
            f"_type {', '.join(unknown) or '(empty)'}: this server exports "
            f"{', '.join(EXPORT_TYPES)}",
        )
    return types


def _since(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_iso_ms(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise FhirError(400, "invalid", f"_since={value!r} is not a FHIR instant") from exc


async def _kick_off(request: Request, ctx: Context, base: str, owner: str) -> Response:
    jobs, archive_root = _jobs(ctx)
    params = request.query_params
    unknown = sorted(set(params) - set(_PARAMS) - {"_format"})
    if unknown:
        raise FhirError(
            400, "not-supported", f"unsupported $export parameter(s): {', '.join(unknown)}"
        )
    output_format = params.get("_outputFormat", "application/fhir+ndjson")
    if output_format not in OUTPUT_FORMATS:
        raise FhirError(400, "not-supported", f"_outputFormat {output_format!r}: only ndjson")
    archived = params.get("includeArchived", "false")
    if archived not in ("true", "false"):
        raise FhirError(400, "invalid", "includeArchived must be true or false")
    types, since = _types(params.get("_type")), _since(params.get("_since"))

    def wanted(job: str) -> ExportRequest:
        return ExportRequest(
            updated_since_ms=since,
            include_archived=archived == "true",
            base_url=f"{base}/$export-file/{job}",
            kickoff_url=str(request.url),
            requires_access_token=True,
            types=types,
        )

    store = Store(ctx.store(), archive_root, ctx.clock)
    job = jobs.start(wanted, owner, store)
    note = operation_outcome([issue("information", "informational", f"export job {job} started")])
    return FhirResponse(note, 202, {"Content-Location": f"{base}/$export-status/{job}"})


@router.get("/fhir/$export", summary="Bulk Data kick-off (system)", status_code=202)
async def export_system(request: Request, ctx: Ctx, base: Base, token: ReadToken) -> Response:
    return await _kick_off(request, ctx, base, token.name)


@router.get("/fhir/Patient/$export", summary="Bulk Data kick-off (all patients)", status_code=202)
async def export_patients(request: Request, ctx: Ctx, base: Base, token: ReadToken) -> Response:
    return await _kick_off(request, ctx, base, token.name)


def _not_found(exc: JobNotFoundError) -> FhirError:
    return FhirError(404, "not-found", str(exc))


@router.get("/fhir/$export-status/{job}", summary="Bulk Data status and manifest")
async def export_status(job: str, ctx: Ctx, token: ReadToken) -> Response:
    jobs, _ = _jobs(ctx)
    try:
        status = jobs.status(job, token.name)
    except JobNotFoundError as exc:
        raise _not_found(exc) from exc
    if status.state == "running":
        headers = {
            "X-Progress": f"{status.progress:,} resources written",
            "Retry-After": str(RETRY_AFTER_S),
        }
        return Response(status_code=202, headers=headers)
    if status.state == "failed":
        raise FhirError(500, "exception", f"the export failed: {status.error}")
    return JSONResponse(status.manifest)


@router.delete("/fhir/$export-status/{job}", summary="Cancel a Bulk Data export", status_code=202)
async def export_cancel(job: str, ctx: Ctx, token: ReadToken) -> Response:
    jobs, _ = _jobs(ctx)
    try:
        jobs.cancel(job, token.name)
    except JobNotFoundError as exc:
        raise _not_found(exc) from exc
    note = operation_outcome([issue("information", "informational", f"export job {job} cancelled")])
    return FhirResponse(note, 202)


@router.get("/fhir/$export-file/{job}/{name}", summary="One Bulk Data output file")
async def export_file(job: str, name: str, ctx: Ctx, token: ReadToken) -> Response:
    jobs, _ = _jobs(ctx)
    try:
        path = jobs.file(job, token.name, name)
    except JobNotFoundError as exc:
        raise _not_found(exc) from exc
    return FileResponse(path, media_type="application/fhir+ndjson")
