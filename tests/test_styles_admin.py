"""Style management: delete (viewers move on), hide shipped styles, rename, download as zip."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import torch
from conftest import make_style_image, make_tiny_style
from jobs_helpers import form
from webrtc_helpers import ADMIN_TOKEN, Viewer, test_config

from server.app import create_app
from server.styles.files import delete_folder
from server.styles.keys import REGISTRY
from server.styles.registry import StyleRegistry
from stylefusion.style_folder import load_transformer, read_style

pytestmark = pytest.mark.timeout(90)

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}  # the token of test_config


@pytest.fixture
async def client(aiohttp_client, models_dir, tmp_path):
    return await aiohttp_client(create_app(test_config(models_dir, tmp_path)))


async def listed(client) -> dict:
    return await (await client.get("/api/styles")).json()


def mark_shipped(models_dir, name: str) -> None:
    path = models_dir / name / "meta.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "shipped": True}))


async def test_style_management_needs_the_admin_token(client, models_dir):
    wrong = {"Authorization": "Bearer not-the-token"}
    for headers in ({}, wrong):
        assert (await client.delete("/api/styles/alpha", headers=headers)).status == 401
        patch = await client.patch("/api/styles/alpha", json={"display_name": "X"}, headers=headers)
        assert patch.status == 401
        assert (await client.get("/api/styles/alpha/download", headers=headers)).status == 401
    assert (models_dir / "alpha" / "lite.safetensors").is_file()
    assert [s["display_name"] for s in (await listed(client))["styles"]] == ["alpha", "beta"]


async def test_delete_removes_the_folder_but_never_the_last_style(client, models_dir):
    response = await client.delete("/api/styles/alpha", headers=AUTH)
    assert response.status == 200
    assert (await response.json())["default"] == "beta"
    assert sorted(p.name for p in models_dir.iterdir()) == ["beta"]  # no trash left behind
    assert [s["name"] for s in (await listed(client))["styles"]] == ["beta"]
    assert (await client.delete("/api/styles/alpha", headers=AUTH)).status == 404
    assert (await client.delete("/api/styles/nope", headers=AUTH)).status == 404
    last = await client.delete("/api/styles/beta", headers=AUTH)
    assert last.status == 409 and "last style" in (await last.json())["error"]
    assert (models_dir / "beta" / "meta.json").is_file()


@pytest.mark.parametrize("where", ["api", "another-process"])
async def test_viewers_of_a_deleted_style_move_to_the_default(client, models_dir, where):
    viewer = Viewer()
    try:
        await viewer.connect(client, style="beta")
        await viewer.wait_open()
        await viewer.latest_image(skip=2)
        if where == "api":
            assert (await client.delete("/api/styles/beta", headers=AUTH)).status == 200
        else:  # a server sharing the models dir deleted it: the 2 s poll notices
            delete_folder(models_dir / "beta")
        event = await viewer.wait_message(lambda m: m.get("event") == "style")
        assert event == {"event": "style", "style": "alpha"}
        for _ in range(3):  # frames keep coming in the new style
            assert (await viewer.next_image()).shape == (120, 160, 3)
        assert not [m for m in viewer.messages if m.get("event") == "error"]
    finally:
        await viewer.close()


async def test_shipped_style_is_hidden_and_keeps_its_files(client, models_dir):
    mark_shipped(models_dir, "alpha")
    files = sorted(p.name for p in (models_dir / "alpha").iterdir())
    response = await client.delete("/api/styles/alpha", headers=AUTH)
    assert response.status == 200 and (await response.json())["hidden"] is True
    assert sorted(p.name for p in (models_dir / "alpha").iterdir()) == files
    body = await listed(client)
    assert [s["name"] for s in body["styles"]] == ["beta"] and body["hidden"] == ["alpha"]
    assert (await client.get("/api/styles/alpha/thumbnail")).status == 200  # for the admin page
    assert (await client.delete("/api/styles/beta", headers=AUTH)).status == 409
    shown = await client.patch("/api/styles/alpha", json={"hidden": False}, headers=AUTH)
    assert shown.status == 200 and (await shown.json())["shipped"] is True
    body = await listed(client)
    assert [s["name"] for s in body["styles"]] == ["alpha", "beta"] and body["hidden"] == []


async def test_a_hidden_style_can_be_deleted_and_its_name_reused(client, models_dir):
    hide = await client.patch("/api/styles/beta", json={"hidden": True}, headers=AUTH)
    assert hide.status == 200 and (await hide.json())["hidden"] is True
    assert (await client.delete("/api/styles/alpha", headers=AUTH)).status == 409  # beta is hidden
    assert (await client.delete("/api/styles/beta", headers=AUTH)).status == 200
    assert not (models_dir / "beta").exists()
    make_tiny_style(models_dir, "beta", seed=5, variants=("lite",))
    await client.app[REGISTRY].rescan()
    body = await listed(client)
    assert [s["name"] for s in body["styles"]] == ["alpha", "beta"] and body["hidden"] == []


async def test_a_style_that_a_training_job_writes_is_not_deleted(
    client, models_dir, content_dir, tmp_path
):
    painting = make_style_image(tmp_path / "painting.png", seed=7)
    files = {"style_image": painting, "content": sorted(content_dir.glob("*.jpg"))}
    fields = {"name": "beta", "overwrite": "true", "seconds": "600", "size": "32"}
    response = await client.post("/api/jobs/train", data=form(files, **fields), headers=AUTH)
    assert response.status == 202
    job_id = (await response.json())["id"]
    refused = await client.delete("/api/styles/beta", headers=AUTH)
    assert refused.status == 409 and "training job" in (await refused.json())["error"]
    assert (models_dir / "beta" / "meta.json").is_file()
    await client.post(f"/api/jobs/{job_id}/cancel", headers=AUTH)


async def test_rename_persists_across_a_rescan(client, models_dir):
    model = client.app[REGISTRY].stylizer("alpha")
    response = await client.patch(
        "/api/styles/alpha", json={"display_name": "  Water   Lilies "}, headers=AUTH
    )
    assert response.status == 200 and (await response.json())["display_name"] == "Water Lilies"
    names = {s["name"]: s["display_name"] for s in (await listed(client))["styles"]}
    assert names == {"alpha": "Water Lilies", "beta": "beta"}
    assert client.app[REGISTRY].stylizer("alpha") is model  # a rename reloads no weights
    fresh = StyleRegistry(models_dir, torch.device("cpu"))  # e.g. after a restart
    await fresh.rescan()
    assert fresh.get("alpha").info.display_name == "Water Lilies"
    assert read_style(models_dir / "alpha").name == "alpha"
    for bad in ({"display_name": ""}, {"display_name": "x" * 81}, {"hidden": "yes"}, {}, []):
        response = await client.patch("/api/styles/alpha", json=bad, headers=AUTH)
        assert response.status == 400, bad
    missing = await client.patch("/api/styles/nope", json={"display_name": "N"}, headers=AUTH)
    assert missing.status == 404


async def test_download_is_a_zip_of_a_loadable_style_folder(client, models_dir, tmp_path):
    response = await client.get("/api/styles/alpha/download", headers=AUTH)
    assert response.status == 200 and response.content_type == "application/zip"
    assert 'filename="alpha.zip"' in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
        archive.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / "alpha"
    info = read_style(folder)
    assert info.name == "alpha" and set(info.variants) == {"full", "lite"}
    assert info.style_image is not None
    original = load_transformer(models_dir / "alpha", "lite").state_dict()
    copied = load_transformer(folder, "lite").state_dict()
    assert all(torch.equal(original[k], copied[k]) for k in original)
    assert (await client.get("/api/styles/nope/download", headers=AUTH)).status == 404


async def test_patch_bodies_get_the_json_depth_guard(client):
    headers = AUTH | {"Content-Type": "application/json"}
    for body in (b"[" * 4000, b'{"display_name": ' + b"[" * 3000, b"\xff\xfe{}"):
        response = await client.patch("/api/styles/alpha", data=body, headers=headers)
        assert response.status == 400 and "JSON" in (await response.json())["error"]
    response = await client.patch("/api/styles/alpha", data=b" " * 5000, headers=headers)
    assert response.status == 413  # over the PATCH cap, refused before parsing
    response = await client.patch("/api/styles/alpha", json={"display_name": "A"}, headers=AUTH)
    assert response.status == 200
