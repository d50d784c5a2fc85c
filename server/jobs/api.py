"""HTTP handlers of /api/jobs*: submit, list, inspect, cancel, delete, results and previews."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from stylefusion.errors import BudgetTooSmall, InvalidInput
from stylefusion.images import is_image_file
from stylefusion.style_folder import resolve_style

from ..clients import client_address
from ..config import ServerConfig
from ..errors import Conflict, InsufficientStorage, NotFound, Unprocessable
from .params import (
    CONTENT_FOLDER,
    P,
    RenderParams,
    TrainParams,
    VideoParams,
    from_fields,
    missing_fields,
    parse_fields,
    title_of,
    to_json,
)
from .queue import QueueLimits
from .store import Job, JobStore
from .training import (
    TrainDefaults,
    TrainPlanner,
    budget_refusal,
    budget_sent,
    form_without_backbone,
)
from .uploads import (
    MAX_FILES,
    FileField,
    UploadedForm,
    UploadLimits,
    probe_clip,
    probe_image,
    read_form,
)

log = logging.getLogger(__name__)

PREVIEW_FILE = "preview.jpg"
FORM_SLACK = 64 * 1024  # multipart headers and plain fields on top of the files
PROBES_AT_ONCE = 2  # clip probes (child processes) running at once; more uploads wait their turn
MAX_CONTENT_UPLOAD = 8  # training photos per request, counted in images' byte limits
MAX_PAGE = 200  # jobs per page of GET /api/jobs (also the page the admin page shows)


def job_view(job: Job, history: list[dict[str, float]] | None = None) -> dict[str, Any]:
    """The public JSON of a job (contract fields plus a few extras for the admin page)."""
    files = job.params.files
    view: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "progress": round(job.progress, 4),
        "eta_s": job.eta_s,
        "params": {k: v for k, v in to_json(job.params).items() if k not in files},
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
    }
    if job.error:
        view["error"] = job.error
    if job.metrics:
        view["metrics"] = job.metrics
    if history is not None:
        view["history"] = history
    if job.preview:
        view["preview_url"] = f"/api/jobs/{job.id}/preview?v={job.preview}"
    if job.state == "done" and job.result:
        view["result_url"] = f"/api/jobs/{job.id}/result"
    return view


def page_limit(raw: str | None) -> int:
    """The `limit` of a job-list page: 1..MAX_PAGE, MAX_PAGE if not given; else 422."""
    if raw is None:
        return MAX_PAGE
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise Unprocessable(f"'limit' must be a whole number from 1 to {MAX_PAGE}")
    return limit


def _has_photos(folder: Path | None) -> bool:
    """Whether a folder (recursively) holds at least one image file."""
    if folder is None or not folder.is_dir():
        return False
    return any(is_image_file(p) for p in folder.rglob("*"))


class JobsApi:
    """The job API: turns requests into stored jobs and jobs into JSON."""

    def __init__(
        self,
        store: JobStore,
        config: ServerConfig,
        training: tuple[TrainDefaults, TrainPlanner],
        content_dir: Path | None,
        clip_side: int | None = None,
    ) -> None:
        """training: what a training job runs unless it asks, and its expected duration;
        clip_side: the longest side a clip job paints at unless it sends max_side (None: the
        clip's own size)."""
        self.store = store
        self.config = config
        self.models_dir = Path(config.models_dir)
        self.content_dir = content_dir
        self.train_defaults, self.planner = training
        self.limits = UploadLimits.from_config(config)
        self.queue_limits = QueueLimits(config.max_queued_jobs, config.max_queued_jobs_per_client)
        self.defaults: dict[type, dict[str, Any]] = {VideoParams: {"max_side": clip_side}}
        self.on_submit: Callable[[], None] = lambda: None
        self._probes = threading.BoundedSemaphore(PROBES_AT_ONCE)

    async def list_jobs(self, request: web.Request) -> web.Response:
        """GET /api/jobs[?before=<job id or time>&limit=N]: a page of jobs, newest first.

        The list stays a plain JSON list (CONTRACT); a `Link: <...>; rel="next"` header
        names the next page while there is one.
        """
        limit = page_limit(request.query.get("limit"))
        before = request.query.get("before")
        try:  # one more than asked for: is there a next page?
            jobs = await asyncio.to_thread(self.store.list, limit + 1, before)
        except ValueError:
            message = "'before' must be the id of a job or a time (epoch seconds)"
            raise Unprocessable(message) from None
        headers = {}
        if len(jobs) > limit:
            jobs = jobs[:limit]
            headers["Link"] = f'</api/jobs?before={jobs[-1].id}&limit={limit}>; rel="next"'
        return web.json_response([job_view(j) for j in jobs], headers=headers)

    async def get_job(self, request: web.Request) -> web.Response:
        """GET /api/jobs/{id}: one job, with its loss history."""
        job = await self._job(request)
        history = await asyncio.to_thread(self.store.history, job.id)
        return web.json_response(job_view(job, history))

    async def cancel(self, request: web.Request) -> web.Response:
        """POST /api/jobs/{id}/cancel: stop a queued or running job (no-op once it ended)."""
        job = await self._job(request)
        job = await asyncio.to_thread(self.store.request_cancel, job.id)
        if job is None:
            raise NotFound("no such job")
        return web.json_response(job_view(job))

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /api/jobs/{id}: remove a job that is not running, and its files (else 409)."""
        job = await self._job(request)
        if not await asyncio.to_thread(self.store.remove, job.id):
            raise Conflict(f"job {job.id} is running; cancel it first")
        log.info("deleted %s job %s", job.kind, job.id)
        return web.json_response({"id": job.id, "deleted": True})

    async def result(self, request: web.Request) -> web.StreamResponse:
        """GET /api/jobs/{id}/result: the output file of a finished job."""
        job = await self._job(request)
        path = self.result_path(job)
        if job.state != "done" or path is None or not path.is_file():
            raise NotFound(f"job {job.id} has no result (state: {job.state})")
        name = job.params.result_name()  # safe ASCII: no quoting needed
        return web.FileResponse(
            path, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    def result_path(self, job: Job) -> Path | None:
        """Where a job's result lives: its folder, or the models dir for a trained style."""
        if not job.result:
            return None
        base = self.models_dir if job.kind == "train" else self.store.job_dir(job.id)
        return base / job.result

    async def preview(self, request: web.Request) -> web.StreamResponse:
        """GET /api/jobs/{id}/preview: the latest preview image of a running job."""
        job = await self._job(request)
        path = self.store.job_dir(job.id) / PREVIEW_FILE
        if not job.preview or not path.is_file():
            raise NotFound(f"job {job.id} has no preview yet")
        return web.FileResponse(path, headers={"Cache-Control": "no-store"})

    async def _job(self, request: web.Request) -> Job:
        job = await asyncio.to_thread(self.store.get, request.match_info["id"])
        if job is None:
            raise NotFound("no such job")
        return job

    async def submit_video(self, request: web.Request) -> web.Response:
        """POST /api/jobs/video: multipart file, style, strength?, max_side? (in any order)."""
        files = {"file": FileField(self.limits.clip_bytes)}
        return await self._submit(request, VideoParams, files, self._video_files)

    async def submit_render(self, request: web.Request) -> web.Response:
        """POST /api/jobs/render: multipart content, style_image, size?, iterations?, ..."""
        image = FileField(self.limits.image_bytes)
        files = {"content": image, "style_image": image}
        return await self._submit(request, RenderParams, files, self._render_files)

    async def submit_train(self, request: web.Request) -> web.Response:
        """POST /api/jobs/train: multipart style_image, name, steps? or seconds?, content?..."""
        files = {
            "style_image": FileField(self.limits.image_bytes),
            "content": FileField(self.limits.image_bytes, MAX_FILES),  # photos to train on
        }
        return await self._submit(request, TrainParams, files, self._train_files)

    async def _submit(
        self,
        request: web.Request,
        cls: type[P],
        file_fields: dict[str, FileField],
        add_files: Callable[[P, UploadedForm, Path], P],
    ) -> web.Response:
        """Check queue and disk, read the form (its fields checked as early as they allow),
        then probe the files and queue the job."""
        max_total = sum(f.max_bytes for f in file_fields.values()) + FORM_SLACK
        if cls is TrainParams:  # content photos may come as many files
            max_total += self.limits.image_bytes * MAX_CONTENT_UPLOAD
        client = client_address(request, self.config.trusted_proxies)
        await asyncio.to_thread(self.store.check_queue, client, self.queue_limits)  # 429 early
        await asyncio.to_thread(self._check_disk, request.content_length or 0)
        checked: list[P] = []

        async def check_fields(fields: dict[str, str], final: bool) -> None:
            params = await asyncio.to_thread(self._params, cls, fields, final)
            if final:
                assert params is not None  # the final check returns params or raises
                if isinstance(params, TrainParams) and params.backbone and not fields.get("steps"):
                    # no budget: the steps that fit this device; seconds: its timed minimum
                    params, _ = await self.planner.estimate(params, budget_sent(fields))
                checked.append(params)

        job_id = self.store.new_id()
        folder = self.store.job_dir(job_id)
        try:
            form = await read_form(request, folder, file_fields, max_total, check_fields)
            params = await asyncio.to_thread(add_files, checked[0], form, folder)
            await asyncio.to_thread(self.store.create, params, job_id, client, self.queue_limits)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        log.info("queued %s job %s", cls.kind, job_id)
        self.on_submit()
        return web.json_response({"id": job_id}, status=202)

    def _check_disk(self, incoming: int) -> None:
        """507 if storing `incoming` more bytes would leave less free disk than configured."""
        free = shutil.disk_usage(self.store.data_dir).free
        floor = self.config.min_free_disk_mb * 2**20
        if free - incoming < floor:
            raise InsufficientStorage(
                f"the server's disk is almost full ({free // 2**20} MiB free); try again later"
            )

    def _params(
        self, cls: type[P], fields: dict[str, str], final: bool = True, named: bool = True
    ) -> P | None:
        """Typed, library-checked params from the plain fields; ServerErrors for bad ones.

        Not `final` (more fields may follow a file), only what no later field can cure is
        refused: a bad or unknown field, a refused setting; a missing field waits for the end
        (None), and so does an existing style name while `overwrite` may still come. Not
        `named` (an estimate): the name is not checked against the styles.
        """
        try:
            defaults = self.defaults.get(cls, {})
            if cls is TrainParams:  # the backbone sent (or the default) decides the defaults
                defaults = self.train_defaults.defaults(fields, final)
                fields = form_without_backbone(fields)
            if not final and missing_fields(cls, parse_fields(cls, fields), defaults):
                return None
            params = from_fields(cls, fields, **defaults)
            if isinstance(params, VideoParams):
                resolve_style(params.style, self.models_dir)
        except BudgetTooSmall as exc:
            raise budget_refusal(exc) from None
        except InvalidInput as exc:
            raise Unprocessable(str(exc)) from None
        for name, value, limit in self._caps(params):
            if value > limit:
                raise Unprocessable(f"{name!r} must be at most {limit}")
        if isinstance(params, TrainParams):
            params = params.with_budget()
            if named and (final or "overwrite" in fields):
                self._check_name_free(params.name, params.overwrite)
        return params

    async def estimate_train(self, request: web.Request) -> web.Response:
        """GET /api/train/estimate?steps=|seconds=&size=&batch_size=&backbone=&fine_tune=...:
        the run a training form with these fields would start, its steps and expected seconds
        on this server's job device; 422 (naming the minimum) for a budget it would refuse."""
        query = request.query
        repeated = sorted({k for k in query if len(query.getall(k)) > 1})
        if repeated:
            raise Unprocessable(f"field {repeated[0]!r} was sent more than once")
        fields = {"name": "estimate", **query}
        params = await asyncio.to_thread(self._params, TrainParams, fields, True, False)
        assert isinstance(params, TrainParams)
        _, estimate = await self.planner.estimate(params, budget_sent(fields))
        return web.json_response(estimate.to_dict())

    def _caps(self, params: P) -> list[tuple[str, float, float]]:
        """(field, value, the server's upper limit): policy on top of the library's checks."""
        config = self.config
        if isinstance(params, RenderParams):
            return [
                ("size", params.size, config.max_render_size),
                ("iterations", params.iterations, config.max_render_iterations),
            ]
        if isinstance(params, TrainParams):
            caps = [
                ("size", params.size, config.max_train_size),
                ("style_size", params.style_size, config.max_train_size),
                ("batch_size", params.batch_size, config.max_train_batch),
                ("steps", params.steps, config.max_train_steps),
                ("seconds", params.seconds, config.max_train_seconds),
            ]
            return [(name, value, limit) for name, value, limit in caps if value is not None]
        return []

    def _video_files(self, params: VideoParams, form: UploadedForm, folder: Path) -> VideoParams:
        with self._probes:  # each probe may use up to probe_memory_mb: bound them together
            clip = probe_clip(form.file("file"), self.limits)
        return dataclasses.replace(params, input=clip.name, title=title_of(form.sent_name("file")))

    def _render_files(self, params: RenderParams, form: UploadedForm, folder: Path) -> RenderParams:
        content = probe_image(form.file("content"), self.limits)
        style_image = probe_image(form.file("style_image"), self.limits)
        return dataclasses.replace(
            params,
            content=content.name,
            style_image=style_image.name,
            title=title_of(form.sent_name("content")),
            style_title=title_of(form.sent_name("style_image")),
        )

    def _train_files(self, params: TrainParams, form: UploadedForm, folder: Path) -> TrainParams:
        """The style image, and optional uploaded photos in <job>/content/."""
        style_image = probe_image(form.file("style_image"), self.limits)
        uploads = form.files.get("content", [])
        if not uploads and not _has_photos(self.content_dir):
            raise Unprocessable("no content photos to train on: upload some in the 'content' field")
        if uploads:
            (folder / CONTENT_FOLDER).mkdir()
        for path in uploads:
            probed = probe_image(path, self.limits)
            probed.rename(folder / CONTENT_FOLDER / probed.name)
        content = CONTENT_FOLDER if uploads else None
        return dataclasses.replace(params, style_image=style_image.name, content=content)

    def _check_name_free(self, name: str, overwrite: bool) -> None:
        if (self.models_dir / name).exists() and not overwrite:
            raise Conflict(f"style {name!r} exists; send overwrite=true to replace it")
        if self.store.active_with("train", "name", name):
            raise Conflict(f"a job is already training style {name!r}")
