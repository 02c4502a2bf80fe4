import pytest


@pytest.fixture
def anyio_backend():
    """The built-in HTTP and database services run on asyncio."""
    return "asyncio"


@pytest.fixture
def framework_overrides(tmp_path):
    """Settings for every test: a throwaway database, quiet logs."""
    return {
{% if cookiecutter.include_database == "yes" %}        "database.url": f"sqlite+aiosqlite:///{tmp_path}/test.db",
{% endif %}        "logging.level": "WARNING",
    }
