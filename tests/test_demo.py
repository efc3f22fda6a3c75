"""The demo organisation shows, out of the box, what SiloSpan is for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.demo import build


@pytest.fixture
async def demo(session):
    await build(session, now=datetime.now(UTC))
    await session.commit()


async def test_the_demo_shows_the_seed_stories(demo, client, keys):
    reader = await keys.reader()

    company = (await client.get("/v1/scores/company", headers=reader)).json()
    assert company["value"] is not None and 0 < company["value"] < 100
    assert company["details"]["basis"] == "touchpoints, weighted by priority"

    conflicts = (await client.get("/v1/conflicts?status=open", headers=reader)).json()["items"]
    pairs = {frozenset(g["key"] for g in c["goals"]): c for c in conflicts}
    upsell_vs_rapport = pairs[frozenset({"mkt.swift-calls", "cc.rapport"})]
    assert upsell_vs_rapport["severity"] == 3
    assert upsell_vs_rapport["metric_path"] == ["call.handle_time", "call.rapport"]

    buffering = (await client.get("/v1/findings?rule=buffering", headers=reader)).json()["items"]
    assert "dispute-outcome" in {f["subject"]["key"] for f in buffering}

    dates_only = (
        await client.get("/v1/findings?rule=partner-financial-only", headers=reader)
    ).json()["items"]
    assert [f["evidence"]["partner"] for f in dates_only] == ["swiftline"]

    case = (await client.get("/v1/cases/case-7781", headers=reader)).json()
    assert case["transfers"] >= 5
    assert case["ping_pongs"] >= 1
    assert [s["index"] for s in case["steps"]] == list(range(7))

    units = {u["key"]: u["ring"] for u in (await client.get("/v1/units", headers=reader)).json()["items"]}
    assert units["contact-centre"] == 1 and units["disputes"] == 2 and units["compliance"] == 3

    touchpoint = (await client.get("/v1/scores/touchpoints/service-call", headers=reader)).json()
    assert touchpoint["details"]["driver_weight"]["source"] == "derived"
    assert touchpoint["details"]["driver_weight"]["n"] >= 30

    rules = {f["rule"] for f in (await client.get("/v1/findings?limit=500", headers=reader)).json()["items"]}
    assert len(rules) >= 10
