"""End to end: metrics, a relation, dueling goals, a partner agreement and its joint goal."""

from __future__ import annotations

from tests.factories import make_journey, make_touchpoint, make_unit


async def test_goals_agreements_and_conflicts(client, keys, session):
    w = await keys.writer()
    await make_unit(session, key="marketing")
    await make_unit(session, key="service")
    await make_unit(session, key="courier", kind="partner")
    await make_journey(session, key="j", stages=["call"])
    await make_touchpoint(session, key="call", journey="j", stage="call", owner="service", moment_of_truth=True)
    for key, kind in (("handle-time", "operational"), ("rapport", "survey_score"), ("on-time", "operational")):
        r = await client.post("/v1/metrics", json={"key": key, "name": key, "kind": kind}, headers=w)
        assert r.status_code == 201, r.text
    r = await client.post("/v1/metric-relations", json={"from_metric": "handle-time", "to_metric": "rapport", "effect": 1}, headers=w)
    assert r.status_code == 201, r.text
    assert r.json()["key"] == "handle-time--rapport"
    r = await client.post("/v1/goals", json={"key": "swift", "title": "Swift calls", "owner": "marketing", "metric": "handle-time", "direction": "decrease", "kind": "means", "incentive_weight": 0.2, "touchpoints": ["call"]}, headers=w)
    assert r.status_code == 201, r.text
    r = await client.post("/v1/goals", json={"key": "rapport", "title": "Rapport", "owner": "service", "metric": "rapport", "direction": "increase", "kind": "means", "touchpoints": ["call"], "contributes_to": []}, headers=w)
    assert r.status_code == 201, r.text
    r = await client.get("/v1/conflicts", headers=w)
    assert [c["severity"] for c in r.json()["items"]] == [3], r.text
    r = await client.patch("/v1/goals/swift", json={"contributes_to": ["rapport"]}, headers=w)
    assert r.status_code == 200, r.text
    r = await client.patch("/v1/goals/rapport", json={"contributes_to": ["swift"]}, headers=w)
    assert r.status_code == 422 and "rapport → swift → rapport" in r.json()["detail"], r.text
    r = await client.post("/v1/partner-agreements", json={"key": "a1", "title": "Delivery", "partner": "courier", "internal_owner": "service", "status": "active", "starts_on": "2026-01-01"}, headers=w)
    assert r.status_code == 201, r.text
    p = await keys.partner("courier")
    # The company proposes first: until then the partner sees no metric it could name.
    jg = {"key": "jg", "title": "On time", "owner": "courier", "metric": "on-time", "direction": "increase", "kind": "means"}
    r = await client.post("/v1/partner-agreements/a1/joint-goals", json=jg, headers=p)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "metric"], r.text
    r = await client.post("/v1/partner-agreements/a1/joint-goals", json=jg, headers=w)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "proposed" and r.json()["proposed_by"] == "internal"
    r = await client.post("/v1/partner-agreements/a1/joint-goals", json={**jg, "key": "faster"}, headers=p)
    assert r.status_code == 201, r.text
    assert r.json()["key"] == "courier.faster" and r.json()["proposed_by"] == "partner"
    r = await client.post("/v1/partner-agreements/a1/joint-goals/jg/accept", headers=p)
    assert r.status_code == 403
    r = await client.post("/v1/partner-agreements/a1/joint-goals/jg/accept", headers=w)
    assert r.status_code == 200 and r.json()["status"] == "active" and r.json()["accepted_at"]
    r = await client.get("/v1/goals", headers=p)
    assert [g["key"] for g in r.json()["items"]] == ["courier.faster", "jg"]
    r = await client.get("/v1/findings?rule=partner-financial-only", headers=w)
    assert [f["subject"]["key"] for f in r.json()["items"]] == ["a1"], r.text
    r = await client.get("/v1/scores/partners/courier", headers=p)
    assert r.status_code == 200, r.text
    assert r.json()["components"]["cx_coverage"]["value"] == 0.0
