"""Settings: the framework's sections plus this service's own."""

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict

from framework import Settings


class WorkerSettings(BaseModel):
    """Settings section ``worker``: the background job."""

    model_config = ConfigDict(extra="forbid")

    interval: float = Field(5.0, gt=0, description="Seconds between two runs of the worker.")


class AppSettings(Settings):
    """Every setting of {{ cookiecutter.project_name }}; environment variables start with {{ cookiecutter.env_prefix }}."""

    model_config = SettingsConfigDict(env_prefix="{{ cookiecutter.env_prefix }}")

    worker: WorkerSettings = Field(default_factory=WorkerSettings)
