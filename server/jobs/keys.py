"""AppKeys of the jobs room's own objects."""

from __future__ import annotations

from aiohttp import web

from .estimate import StepTimer
from .runner import JobRunner
from .store import JobStore

JOB_STORE = web.AppKey("job_store", JobStore)
JOB_RUNNER = web.AppKey("job_runner", JobRunner)
STEP_TIMER = web.AppKey("step_timer", StepTimer)
