"""Fixtures of the integration tests; the environment itself is in playbook_env.py."""

import pytest

from playbook_env import Admission, Grid, add_web_hosts


@pytest.fixture
def grid(tmp_path):
    with Grid(tmp_path) as env:
        yield env


@pytest.fixture
def admission(tmp_path):
    with Admission(tmp_path) as env:
        yield env


@pytest.fixture
def two_hosts(admission):
    return add_web_hosts(admission)
