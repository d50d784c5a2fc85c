"""The send budget: the largest size that keeps every viewer at a usable frame rate."""

from __future__ import annotations

import pytest
from webrtc_helpers import Viewer, pin_cost, test_config

from server.app import create_app
from server.live.budget import (
    LADDER,
    MIN_FPS,
    Budget,
    BudgetPlanner,
    CostModel,
    box_shapes,
    plan,
)


def cost(seconds_per_frame_at_vga: float) -> CostModel:
    """A cost model that measured one 640x480 frame at the given seconds."""
    costs = CostModel()
    costs.observe(640, 480, 1, seconds_per_frame_at_vga)
    return costs


def test_a_fast_model_gets_hd_and_a_slow_one_a_smaller_size():
    fast, _ = plan(cost(0.002), viewers=1)
    assert (fast.max_width, fast.max_height, fast.max_fps) == (1280, 720, 30)
    slow, fps = plan(cost(0.08), viewers=1)  # 640x480 would give < 12 fps
    assert slow.max_width * slow.max_height < 640 * 480 and fps >= MIN_FPS


def test_more_viewers_get_less_each():
    costs = cost(0.02)
    budgets = [plan(costs, viewers)[0] for viewers in (1, 2, 4, 8)]
    areas = [b.max_width * b.max_height * b.max_fps for b in budgets]
    assert areas == sorted(areas, reverse=True) and areas[0] > areas[-1]


def test_an_overloaded_server_still_offers_the_smallest_size():
    budget, fps = plan(cost(5.0), viewers=8)
    assert (budget.max_width, budget.max_height) == (160, 120) and budget.max_fps >= 1
    assert fps < MIN_FPS


def test_costs_scale_with_pixels_from_the_latest_measurement():
    costs = cost(0.04)
    assert costs.per_frame(320, 240) == pytest.approx(0.01)
    costs.observe(320, 240, 2, 0.03)  # a batch of two frames took 30 ms
    assert costs.per_frame(320, 240) == pytest.approx(0.015)


def test_fit_keeps_aspect_and_never_upscales():
    box = Budget(640, 480, 30)
    assert box.fit(1920, 1080) == (640, 360)
    assert box.fit(1280, 960) == (640, 480)
    assert box.fit(320, 240) == (320, 240)
    assert box_shapes((640, 480)) == [(480, 640), (360, 640)]


def test_planner_moves_with_viewers_and_does_not_flap_on_noise():
    planner = BudgetPlanner(cost(0.03))
    assert planner.update(1) is False  # one viewer: the budget it started with
    one = planner.current
    assert planner.update(4) and planner.current != one
    assert planner.update(1) and planner.current == one
    planner.costs.observe(640, 480, 1, 0.0295)  # slightly cheaper: not worth a change
    assert planner.update() is False
    assert planner.for_newcomer() == plan(planner.costs, 2)[0]
    assert planner.current.message() == {
        "event": "budget",
        "max_width": one.max_width,
        "max_height": one.max_height,
        "max_fps": one.max_fps,
    }


def is_budget(message: dict) -> bool:
    return message.get("event") == "budget"


async def nth_budget(viewer: Viewer, n: int, timeout: float = 10) -> dict:
    """The n-th budget message a viewer got (waiting for it)."""
    await viewer.wait_message(lambda m: sum(map(is_budget, viewer.messages)) >= n, timeout)
    return [m for m in viewer.messages if is_budget(m)][n - 1]


@pytest.fixture
async def pinned_client(aiohttp_client, models_dir, tmp_path):
    app = create_app(test_config(models_dir, tmp_path))
    client = await aiohttp_client(app)

    return client, lambda per_pixel: pin_cost(app, per_pixel)


async def test_pages_get_a_budget_at_connect_and_when_viewers_join_or_leave(pinned_client):
    client, pin = pinned_client
    pin(2e-7)  # 640x480 costs 61 ms: one viewer gets 12 fps of it, two do not
    config = await (await client.get("/api/config")).json()
    assert config["budget"] == {
        "event": "budget",
        "max_width": 640,
        "max_height": 480,
        "max_fps": 12,
    }
    first, second = Viewer(), Viewer(seed=1)
    try:
        await first.connect(client)
        alone = await nth_budget(first, 1)
        assert (alone["max_width"], alone["max_height"]) == (640, 480)
        await second.connect(client)
        shared = await nth_budget(first, 2)
        assert shared["max_width"] * shared["max_height"] < 640 * 480
        assert await nth_budget(second, 1) == shared
        await second.close()
        assert await nth_budget(first, 3, timeout=30) == alone
    finally:
        await first.close()
        await second.close()


async def test_frames_larger_than_the_budget_are_downscaled_before_the_model(pinned_client):
    client, pin = pinned_client
    pin(1e-5)  # so slow that only the smallest size is offered
    viewer = Viewer(320, 240)  # a client that ignores the budget
    try:
        await viewer.connect(client)
        budget = await viewer.wait_message(is_budget)
        assert (budget["max_width"], budget["max_height"]) == (160, 120)
        image = await viewer.latest_image()
        assert image.shape == (120, 160, 3)
    finally:
        await viewer.close()


def test_a_size_measured_long_ago_follows_the_latest_cost_per_pixel():
    costs = cost(0.3)  # 640x480 measured while the box was busy
    costs.FRESH_S = 0.0  # ... long ago
    for _ in range(30):
        costs.observe(320, 240, 1, 0.01)  # smaller frames are cheap now
    assert costs.per_frame(640, 480) == pytest.approx(0.04, rel=0.01)


def test_the_budget_grows_within_a_second_once_a_size_switches_from_eager_to_its_package():
    costs = CostModel()
    planner = BudgetPlanner(costs)
    for _ in range(3):
        costs.observe(320, 240, 1, 0.06)  # start-up timed eager: 12.5 fps possible
    planner.update(1)
    assert (planner.current.max_width, planner.current.max_fps) == (320, 12)
    for _ in range(10):  # the batcher's next calls: the size's package serves at 27 ms
        costs.observe(320, 240, 1, 0.027)
    assert planner.update()
    assert (planner.current.max_width, planner.current.max_fps) == (320, 20)


def test_the_budget_grows_only_into_sizes_whose_build_has_landed():
    built = {(320, 240)}
    costs = cost(0.2)  # eager: 640x480 too slow for one viewer, 320x240 fine
    costs.FRESH_S = 0.0  # every size is estimated from the latest cost per pixel
    planner = BudgetPlanner(costs, settled=lambda box: box in built)
    planner.update(1)
    assert planner.current.max_width == 320
    for _ in range(20):  # 320x240's package serves: larger sizes would now be affordable ...
        costs.observe(320, 240, 1, 0.005)
    planner.update()
    assert planner.current.max_width == 320  # ... but eager would serve them until built
    built.update(LADDER)
    assert planner.update() and planner.current.max_width > 320
