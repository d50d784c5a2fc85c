"""HTTP handlers of /api/jobs*: submit, list, inspect, cancel, fetch results and previews."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from stylefusion.errors import InvalidInput
from stylefusion.style_folder import resolve_style, validate_name

from .store import Job, JobStore
from .uploads import UploadedForm, UploadError, UploadLimits, probe_clip, probe_image, read_form

log = logging.getLogger(__name__)

PREVIEW_FILE = "preview.jpg"
FORM_SLACK = 64 * 1024  # multipart headers and plain fields on top of the files
Build = Callable[[UploadedForm, Path], dict[str, Any]]


def error(status: int, message: str) -> web.Response:
    """A JSON error answer: {"error": message}."""
    return web.json_response({"error": message}, status=status)


def job_view(job: Job, history: list[dict[str, float]] | None = None) -> dict[str, Any]:
    """The public JSON of a job (contract fields plus a few extras for the admin page)."""
    view: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "progress": round(job.progress, 4),
        "eta_s": job.eta_s,
        "params": {k: v for k, v in job.params.items() if k not in _FILE_PARAMS},
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


_FILE_PARAMS = ("input", "content", "style_image")


def _number(form: UploadedForm, key: str, kind: type, default: Any, lo: float, hi: float) -> Any:
    """Parse an optional numeric form field within [lo, hi] (422 otherwise)."""
    raw = form.fields.get(key, "")
    if raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise UploadError(422, f"{key!r} must be a number, not {raw!r}") from None
    if not lo <= value <= hi:
        raise UploadError(422, f"{key!r} must be between {lo:g} and {hi:g}")
    return value


def _has_photos(folder: Path | None) -> bool:
    """Whether a folder (recursively) holds at least one image file."""
    if folder is None or not folder.is_dir():
        return False
    suffixes = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
    return any(p.suffix.lower() in suffixes for p in folder.rglob("*"))


def _flag(form: UploadedForm, key: str) -> bool:
    return form.fields.get(key, "").lower() in ("1", "true", "yes", "on")


class JobsApi:
    """The job API: turns requests into stored jobs and jobs into JSON."""

    def __init__(
        self,
        store: JobStore,
        models_dir: Path,
        limits: UploadLimits,
        variant: str,
        content_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.models_dir = Path(models_dir)
        self.content_dir = content_dir
        self.limits = limits
        self.default_variant = variant
        self.on_submit: Callable[[], None] = lambda: None

    async def list_jobs(self, request: web.Request) -> web.Response:
        """GET /api/jobs: the newest jobs first."""
        jobs = await asyncio.to_thread(self.store.list)
        return web.json_response([job_view(j) for j in jobs])  # CONTRACT: a list of jobs

    async def get_job(self, request: web.Request) -> web.Response:
        """GET /api/jobs/{id}: one job, with its loss history."""
        job = await self._job(request)
        history = await asyncio.to_thread(self.store.history, job.id)
        return web.json_response(job_view(job, history))

    async def cancel(self, request: web.Request) -> web.Response:
        """POST /api/jobs/{id}/cancel: stop a queued or running job (no-op once it ended)."""
        job = await self._job(request)
        job = await asyncio.to_thread(self.store.request_cancel, job.id)
        assert job is not None
        return web.json_response(job_view(job))

    async def result(self, request: web.Request) -> web.StreamResponse:
        """GET /api/jobs/{id}/result: the output file of a finished job."""
        job = await self._job(request)
        path = Path(job.result) if job.result else None
        if job.state != "done" or path is None or not path.is_file():
            return error(404, f"job {job.id} has no result (state: {job.state})")
        name = f"{job.params.get('name', job.id)}-{path.name}"
        return web.FileResponse(
            path, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    async def preview(self, request: web.Request) -> web.StreamResponse:
        """GET /api/jobs/{id}/preview: the latest preview image of a running job."""
        job = await self._job(request)
        path = self.store.job_dir(job.id) / PREVIEW_FILE
        if not job.preview or not path.is_file():
            return error(404, f"job {job.id} has no preview yet")
        return web.FileResponse(path, headers={"Cache-Control": "no-store"})

    async def _job(self, request: web.Request) -> Job:
        job = await asyncio.to_thread(self.store.get, request.match_info["id"])
        if job is None:
            raise web.HTTPNotFound(text='{"error": "no such job"}', content_type="application/json")
        return job

    async def submit_video(self, request: web.Request) -> web.Response:
        """POST /api/jobs/video: multipart file, style, strength?, max_side?."""
        limits = {"file": self.limits.clip_bytes}
        return await self._submit(request, "video", limits, self._video_params)

    async def submit_render(self, request: web.Request) -> web.Response:
        """POST /api/jobs/render: multipart content, style_image, size?, iterations?."""
        limits = {"content": self.limits.image_bytes, "style_image": self.limits.image_bytes}
        return await self._submit(request, "render", limits, self._render_params)

    async def submit_train(self, request: web.Request) -> web.Response:
        """POST /api/jobs/train: multipart style_image, name, steps? or seconds?, size?, ..."""
        limits = {"style_image": self.limits.image_bytes, "content": self.limits.image_bytes}
        return await self._submit(request, "train", limits, self._train_params)

    async def _submit(
        self, request: web.Request, kind: str, file_limits: dict[str, int], build: Build
    ) -> web.Response:
        job_id = self.store.new_id()
        folder = self.store.job_dir(job_id)
        max_total = sum(file_limits.values()) + FORM_SLACK
        if kind == "train":  # content photos may come as many files
            max_total += self.limits.image_bytes * 8
        try:
            form = await read_form(request, folder, file_limits, max_total)
            params = await asyncio.to_thread(build, form, folder)
            await asyncio.to_thread(self.store.create, kind, params, job_id)
        except UploadError as exc:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            return error(exc.status, exc.message)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        log.info("queued %s job %s", kind, job_id)
        self.on_submit()
        return web.json_response({"id": job_id}, status=202)

    def _video_params(self, form: UploadedForm, folder: Path) -> dict[str, Any]:
        style = form.fields.get("style", "")
        try:
            resolve_style(validate_name(style), self.models_dir)
        except InvalidInput as exc:
            raise UploadError(422, str(exc)) from None
        params = {
            "style": style,
            "strength": _number(form, "strength", float, 1.0, 0.0, 1.0),
            "max_side": _number(form, "max_side", int, None, 16, 4096),
        }
        params["input"] = probe_clip(form.file("file"), self.limits).name
        return params

    def _render_params(self, form: UploadedForm, folder: Path) -> dict[str, Any]:
        params = {
            "size": _number(form, "size", int, 512, 16, 2048),
            "iterations": _number(form, "iterations", int, 300, 1, 5000),
            "style_weight": _number(form, "style_weight", float, None, 0.0, 1e9),
            "optimizer": form.fields.get("optimizer") or "lbfgs",
        }
        if params["optimizer"] not in ("lbfgs", "adam"):
            raise UploadError(422, "'optimizer' must be lbfgs or adam")
        params["content"] = probe_image(form.file("content"), self.limits).name
        params["style_image"] = probe_image(form.file("style_image"), self.limits).name
        return params

    def _train_params(self, form: UploadedForm, folder: Path) -> dict[str, Any]:
        name = form.fields.get("name", "")
        try:
            validate_name(name)
        except InvalidInput as exc:
            raise UploadError(422, str(exc)) from None
        overwrite = _flag(form, "overwrite")
        params = self._train_budget(form) | {
            "name": name,
            "overwrite": overwrite,
            "display_name": form.fields.get("display_name") or None,
            "size": _number(form, "size", int, 256, 16, 1024),
            "batch_size": _number(form, "batch_size", int, None, 1, 64),
            "variant": form.fields.get("variant") or self.default_variant,
            "style_weight": _number(form, "style_weight", float, None, 0.0, 1e9),
        }
        if params["variant"] not in ("full", "lite"):
            raise UploadError(422, "'variant' must be full or lite")
        self._check_name_free(name, overwrite)
        params["style_image"] = probe_image(form.file("style_image"), self.limits).name
        params["content_files"] = self._content_photos(form, folder)
        return params

    def _content_photos(self, form: UploadedForm, folder: Path) -> int:
        """Optional uploaded content photos go to <job>/content/ (else the server's set is used)."""
        uploads = form.files.get("content", [])
        if not uploads and not _has_photos(self.content_dir):
            raise UploadError(
                422,
                "no content photos to train on: upload some in the 'content' field "
                f"or put photos in {self.content_dir}",
            )
        if uploads:
            (folder / "content").mkdir()
        for path in uploads:
            probed = probe_image(path, self.limits)
            probed.rename(folder / "content" / probed.name)
        return len(uploads)

    @staticmethod
    def _train_budget(form: UploadedForm) -> dict[str, Any]:
        steps = _number(form, "steps", int, None, 1, 1_000_000)
        seconds = _number(form, "seconds", float, None, 1, 7 * 24 * 3600)
        if steps is not None and seconds is not None:
            raise UploadError(422, "give 'steps' or 'seconds', not both")
        if steps is None and seconds is None:
            steps = 2000
        return {"steps": steps, "seconds": seconds}

    def _check_name_free(self, name: str, overwrite: bool) -> None:
        if (self.models_dir / name).exists() and not overwrite:
            raise UploadError(409, f"style {name!r} exists; send overwrite=true to replace it")
        if self.store.active_with("train", "name", name):
            raise UploadError(409, f"a job is already training style {name!r}")
