"""The local HubSpot server keeps the contract crm_sync relies on, seen through the official
client: auth, the 100-input batch limit, 429 headers, 207 multi-status, property groups."""

from __future__ import annotations

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.contacts.exceptions import ApiException
from hubspot.crm.properties import PropertyGroupCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException


def _inputs(n: int, traced: bool = True) -> BatchInputSimplePublicObjectBatchInputUpsert:
    return BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            SimplePublicObjectBatchInputUpsert(
                id=f"dev{i}@example.com",
                id_property="email",
                object_write_trace_id=str(i) if traced else None,
                properties={"firstname": f"Dev {i}"},
            )
            for i in range(n)
        ]
    )


def test_contract_through_the_official_client(hubspot_server):
    hs = hubspot_server
    api = HubSpot(access_token=hs.token, host=hs.url).crm.contacts.batch_api
    answer = api.upsert(_inputs(100))
    assert len(answer.results) == 100 and answer.results[0].new is True
    assert api.api_client.last_response.getheader("X-HubSpot-RateLimit-Max")
    again = api.upsert(_inputs(1))
    assert again.results[0].new is False and again.results[0].id == answer.results[0].id

    with pytest.raises(ApiException) as too_many:
        api.upsert(_inputs(101))
    assert too_many.value.status == 400 and "limit is 100" in too_many.value.body

    with pytest.raises(ApiException) as unauthorized:
        HubSpot(access_token="wrong", host=hs.url).crm.contacts.batch_api.upsert(_inputs(1))
    assert unauthorized.value.status == 401

    hs.fail_next(1, status=429, retry_after=2)
    with pytest.raises(ApiException) as limited:
        api.upsert(_inputs(1))
    assert limited.value.status == 429
    assert limited.value.headers["Retry-After"] == "2"
    assert limited.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "RATE_LIMIT" in limited.value.body

    hs.reject_value("firstname", "Dev 1")
    partial = api.upsert(_inputs(3))  # 207: the client maps it to the "with errors" model
    assert len(partial.results) == 2 and partial.num_errors == 1
    assert partial.errors[0].context == {"objectWriteTraceId": ["1"]}
    with pytest.raises(ApiException) as whole:
        api.upsert(_inputs(3, traced=False))  # no trace ids: the batch fails as a whole
    assert whole.value.status == 400

    groups = HubSpot(access_token=hs.token, host=hs.url).crm.properties.groups_api
    groups.create("contacts", PropertyGroupCreate(name="onramp", label="onramp"))
    with pytest.raises(PropertiesApiException) as exists:
        groups.create("contacts", PropertyGroupCreate(name="onramp", label="onramp"))
    assert exists.value.status == 409
