import pytest


@pytest.fixture
def anyio_backend():
    """The built-in HTTP and database services run on asyncio."""
    return "asyncio"


@pytest.fixture
def framework_overrides(tmp_path):
    """Settings for every test: {% if cookiecutter.include_database == "yes" %}a throwaway database, {% endif %}no shutdown delay, quiet logs."""
    return {
{% if cookiecutter.include_database == "yes" %}        "database.url": f"sqlite+aiosqlite:///{tmp_path}/test.db",
{% endif %}        "lifecycle.shutdown_delay": 0,  # no traffic to keep serving at the end of a test
        "logging.level": "WARNING",
    }
