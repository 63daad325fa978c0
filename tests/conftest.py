"""Shared fixtures live in tests/fixtures/<topic>.py, one module per topic."""

pytest_plugins = [
    "tests.fixtures.db",
    "tests.fixtures.server",
    "tests.fixtures.factories",
    "tests.fixtures.s3",
    "tests.fixtures.docker",
    "tests.fixtures.browser",
    "tests.fixtures.agent",
    "tests.fixtures.inprocess",
    "tests.fixtures.compose",
]
