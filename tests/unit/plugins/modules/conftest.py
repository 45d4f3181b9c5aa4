"""What the module tests share."""

import pytest


@pytest.fixture
def auth(fake_halo):
    """A module's connection options, pointed at the scripted API; no retries."""
    return {"api_host": fake_halo.url, "api_key": "key-id", "api_secret": "s3cret", "max_retries": 0}
