"""Training jobs against a shared backbone: the default new-style job fits norms only and goes
live on the same backbone; too small a budget is refused naming the minimum; a run that does
not converge fails and publishes nothing; a network of its own is still one field away."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from conftest import make_tiny_multistyle, make_tiny_style
from jobs_helpers import AUTH, TOKEN, form, hold_queue, jobs_app, jobs_config, submit, wait_job
from media_helpers import make_photo
from webrtc_helpers import test_config

from server.app import create_app
from server.jobs.keys import STEP_TIMER
from stylefusion.backbone import BACKBONES_DIR
from stylefusion.style_folder import read_style
from stylefusion.train_config import MIN_FIT_STEPS

# a 60-step job (the minimum) of 32 px crops takes ~20 s on one loaded CPU thread; a smooth
# 'painting' with a small style weight converges there, the default weight of 5 does not
QUICK = {"size": "32", "batch_size": "2", "steps": str(MIN_FIT_STEPS), "style_weight": "0.001"}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def shared_models(tmp_path: Path) -> Path:
    """A models dir with 'ink' and 'oil' on one tiny shared backbone, and a single-style
    'alpha' beside them."""
    root = tmp_path / "shared"
    root.mkdir()
    make_tiny_multistyle(root, ["ink", "oil"], seed=3, variants=("lite",))
    make_tiny_style(root, "alpha", seed=1, variants=("lite",))
    return root


def painting(tmp_path: Path) -> Path:
    return make_photo(tmp_path / "Wave.png", width=64, height=64, seed=7)


def file_first(style: Path, **fields: str) -> aiohttp.FormData:
    """A training form whose painting comes before its fields."""
    data = aiohttp.FormData()
    data.add_field("style_image", style.read_bytes(), filename=style.name)
    for name, value in fields.items():
        data.add_field(name, value)
    return data


async def styles_of(client: TestClient) -> dict[str, dict]:
    body = await (await client.get("/api/styles")).json()
    return {s["name"]: s for s in body["styles"]}


async def test_the_default_job_fits_norms_and_goes_live_on_the_same_backbone(
    aiohttp_client, tmp_path: Path, shared_models: Path
) -> None:
    backbone = read_style(shared_models / "ink").backbone_id("lite")
    stored = sorted((shared_models / BACKBONES_DIR).iterdir())
    config = test_config(shared_models, tmp_path, admin_token=TOKEN)  # the shipped photos
    client = await aiohttp_client(create_app(config))
    job_id = await submit(client, "train", file_first(painting(tmp_path), name="wave", **QUICK))
    done = await wait_job(client, job_id, timeout=240)
    assert done["state"] == "done", done
    assert (done["params"]["backbone"], done["params"]["fine_tune"]) == (backbone, False)
    wave = read_style(shared_models / "wave")
    assert wave.backbone_id("lite") == backbone
    assert (shared_models / "wave" / "lite.norms.safetensors").stat().st_size < 8 * 1024
    assert sorted((shared_models / BACKBONES_DIR).iterdir()) == stored  # convolutions untouched
    for _ in range(100):  # the registry polls the models dir
        styles = await styles_of(client)
        if "wave" in styles:
            break
        await asyncio.sleep(0.1)
    assert styles["wave"]["network"] == styles["ink"]["network"] != styles["alpha"]["network"]


async def test_a_budget_too_small_to_converge_is_refused_naming_the_minimum(
    aiohttp_client, tmp_path: Path, shared_models: Path, content_dir: Path
) -> None:
    app = hold_queue(jobs_app(jobs_config(tmp_path, shared_models, content_dir)))
    client = await aiohttp_client(app)
    style = painting(tmp_path)
    sent = (form({"style_image": style}, name="wave", steps="30"),  # fields first, then file
            file_first(style, name="wave", steps="30", backbone="oil"))  # fmt: skip
    for data in sent:
        resp = await client.post("/api/jobs/train", data=data, headers=AUTH)
        body = await resp.json()
        assert resp.status == 422, body
        assert body["minimum_steps"] == MIN_FIT_STEPS and "at least 60 steps" in body["error"]
    assert await (await client.get("/api/jobs", headers=AUTH)).json() == []
    assert list((tmp_path / "var" / "jobs").iterdir()) == []  # no upload kept
    # a network of its own has no such minimum, and fine-tuning needs a backbone
    job_id = await submit(
        client, "train", form({"style_image": style}, name="own", steps="30", backbone="none")
    )
    resp = await client.get(f"/api/jobs/{job_id}", headers=AUTH)
    assert (await resp.json())["params"]["backbone"] is None
    data = form({"style_image": style}, name="x", backbone="none", fine_tune="true")
    resp = await client.post("/api/jobs/train", data=data, headers=AUTH)
    assert resp.status == 422 and "backbone" in (await resp.json())["error"]


async def test_defaults_follow_the_models_dir_and_the_device(
    aiohttp_client, tmp_path: Path, shared_models: Path, models_dir: Path, content_dir: Path
) -> None:
    """A new style on the shared backbone where there is one, with the steps that leave it
    live within 5 minutes at the step rate timed here (60..120); else a network of its own
    whose budget fits a CPU (not 2000 steps of 256 px crops: 16 hours on our 2-core box)."""
    seen = {}
    for label, models, rate in (
        ("fast", shared_models, 0.5),
        ("cpu", shared_models, 2.0),
        ("slow", shared_models, 10.0),
        ("single", models_dir, 2.0),
    ):
        app = hold_queue(jobs_app(jobs_config(tmp_path / label, models, content_dir)))
        app[STEP_TIMER].step_seconds = fixed_rate(rate)  # type: ignore[method-assign]
        client = await aiohttp_client(app)
        job_id = await submit(client, "train", form({"style_image": painting(tmp_path)}, name="x"))
        params = (await (await client.get(f"/api/jobs/{job_id}", headers=AUTH)).json())["params"]
        seen[label] = (params["backbone"] is not None, params["steps"], params["size"])
    # (300 s - 35 s of start-up) x 0.9 / 2 s a step = 119 steps
    assert seen == {
        "fast": (True, 120, 128),
        "cpu": (True, 119, 128),
        "slow": (True, MIN_FIT_STEPS, 128),
        "single": (False, 1500, 128),
    }


def fixed_rate(seconds: float):
    """A StepTimer.step_seconds that answers at once: the machine times steps at this rate."""

    async def step_seconds(config: object) -> float:
        return seconds

    return step_seconds


async def test_a_run_that_does_not_converge_fails_and_publishes_nothing(
    aiohttp_client, tmp_path: Path, shared_models: Path, content_dir: Path
) -> None:
    client = await aiohttp_client(jobs_app(jobs_config(tmp_path, shared_models, content_dir)))
    before = sorted(p.name for p in shared_models.iterdir())
    fields = QUICK | {"style_weight": "5"}  # all style: the run cannot balance it in 60 steps
    job_id = await submit(
        client, "train", form({"style_image": painting(tmp_path)}, name="wave", **fields)
    )
    done = await wait_job(client, job_id, timeout=240)
    assert done["state"] == "failed", done
    assert "did not converge" in done["error"] and "not published" in done["error"]
    assert "result_url" not in done
    assert sorted(p.name for p in shared_models.iterdir()) == before
    assert read_style(shared_models / "ink").backbone_id("lite")  # nothing stored is lost


async def test_the_estimate_says_the_run_and_its_expected_seconds(
    aiohttp_client, tmp_path: Path, shared_models: Path, content_dir: Path
) -> None:
    client = await aiohttp_client(
        hold_queue(jobs_app(jobs_config(tmp_path, shared_models, content_dir)))
    )
    url = "/api/train/estimate"
    assert (await client.get(url)).status == 401
    resp = await client.get(url, params={"size": "32", "batch_size": "1"}, headers=AUTH)
    first = await resp.json()
    assert resp.status == 200, first
    assert (first["mode"], first["steps"], first["size"], first["minimum_steps"]) == (
        "norms",
        120,
        32,
        60,
    )
    assert first["backbone"] == read_style(shared_models / "ink").backbone_id("lite")
    assert first["seconds"] > first["steps"] * first["step_seconds"] > 0
    again = await client.get(
        url, params={"size": "32", "batch_size": "1", "steps": "600"}, headers=AUTH
    )
    more = await again.json()
    assert more["step_seconds"] == first["step_seconds"]  # timed once, then from the cache
    assert more["seconds"] > first["seconds"] and more["steps"] == 600
    too_few = await client.get(url, params={"steps": "10"}, headers=AUTH)
    assert too_few.status == 422 and (await too_few.json())["minimum_steps"] == 60
    short = await client.get(
        url, params={"size": "32", "batch_size": "1", "seconds": "0.01"}, headers=AUTH
    )
    body = await short.json()
    assert (
        short.status == 422 and body["minimum_seconds"] >= 1 and "on this machine" in body["error"]
    )
    # the same seconds budget is refused by the job API before anything is queued
    data = form(
        {"style_image": painting(tmp_path)}, name="wave", size="32", batch_size="1", seconds="0.01"
    )
    resp = await client.post("/api/jobs/train", data=data, headers=AUTH)
    assert resp.status == 422 and (await resp.json())["minimum_seconds"] == body["minimum_seconds"]
    unknown = await client.get(url, params={"backbone": "nope"}, headers=AUTH)
    assert unknown.status == 422 and "no shared backbone" in (await unknown.json())["error"]
    twice = await client.get(f"{url}?size=32&size=64", headers=AUTH)
    assert twice.status == 422
