"""Revision 0002's feature: an optional expiry per link, set on create and on the admin link."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient


def iso(moment: datetime) -> str:
    return moment.isoformat()


def admin_path(link: dict) -> str:
    return "/" + link["admin_url"].split("/", 3)[3]


def shorten(client: TestClient, **extra: object) -> dict:
    response = client.post("/url", json={"target_url": "https://example.com/", **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_an_expiry_set_on_create_is_shown_and_the_link_works_until_then(client: TestClient) -> None:
    when = datetime.now(UTC) + timedelta(days=30)
    link = shorten(client, expires_at=iso(when))
    assert datetime.fromisoformat(link["expires_at"]) == when
    assert client.get(f"/{link['key']}").status_code == 307
    assert client.get(admin_path(link)).json()["expires_at"] == link["expires_at"]
    assert shorten(client)["expires_at"] is None


def test_a_link_past_its_expiry_answers_410_gone_even_from_the_redirect_cache(client: TestClient) -> None:
    link = shorten(client, expires_at=iso(datetime.now(UTC) + timedelta(seconds=1.5)))
    assert client.get(f"/{link['key']}").status_code == 307  # now in the redirect cache
    time.sleep(1.6)
    for method in ("GET", "HEAD"):
        gone = client.request(method, f"/{link['key']}")
        assert gone.status_code == 410, gone.text
    assert client.get(f"/{link['key']}").json() == {"detail": "this link has expired"}
    assert client.get(admin_path(link)).json()["clicks"] == 1, "an expired link counts no click"


def test_the_admin_link_sets_clears_and_ends_the_expiry(client: TestClient) -> None:
    link = shorten(client)
    assert client.get(f"/{link['key']}").status_code == 307
    past = client.patch(admin_path(link), json={"expires_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 200 and past.json()["expires_at"] == "2001-01-01T00:00:00+00:00"
    assert client.get(f"/{link['key']}").status_code == 410, "this replica must not serve it from its cache"
    cleared = client.patch(admin_path(link), json={"expires_at": None})
    assert cleared.json()["expires_at"] is None
    assert client.get(f"/{link['key']}").status_code == 307
    later = client.patch(admin_path(link), json={"expires_at": "2100-01-01T12:00:00+02:00"}).json()
    assert later["expires_at"] == "2100-01-01T10:00:00+00:00", "stored and shown in UTC"


@pytest.mark.parametrize(
    "value",
    ["2001-01-01T00:00:00Z", "2100-01-01T00:00:00", 4102444800, True, "tomorrow", "9999-12-31T23:59:59-01:00"],
    ids=["in the past", "without an offset", "a number", "a boolean", "not a time", "out of range in UTC"],
)
def test_an_expiry_that_is_not_a_future_time_with_an_offset_is_refused_on_create(
    client: TestClient, value: object
) -> None:
    response = client.post("/url", json={"target_url": "https://example.com/", "expires_at": value})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "expires_at"]


@pytest.mark.parametrize(
    "value",
    ["1893456000", "-1893456000", "1893456000.5e3", 1893456000],
    ids=["digits as text", "a sign and digits as text", "an exponent as text", "a JSON number"],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_unix_time_is_refused_as_an_expiry_whether_a_number_or_digits_as_text(
    client: TestClient, method: str, value: object
) -> None:
    """Pydantic reads "1893456000" as 2030-01-01 UTC; a client meaning something else gets a silent expiry."""
    if method == "POST":
        response = client.post("/url", json={"target_url": "https://example.com/", "expires_at": value})
    else:
        response = client.patch(admin_path(shorten(client)), json={"expires_at": value})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "expires_at"]
    assert "as text, like 2030-01-01T00:00Z" in response.json()["detail"][0]["msg"]


def test_changing_the_expiry_needs_the_admin_secret_and_the_field(client: TestClient) -> None:
    link = shorten(client)
    assert client.patch("/admin/not-a-secret", json={"expires_at": None}).status_code == 404
    assert client.patch(admin_path(link), json={}).status_code == 422
    assert client.patch(admin_path(link), json={"expires_at": None, "target_url": "https://x.test/"}).status_code == 422
