"""`Settings`: the framework's configuration model; applications subclass it to add sections.

Values are loaded by `framework.config.load_settings` from files, ``.env``, environment variables and
overrides (see that module for the precedence).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from framework.services.database import DatabaseSettings
from framework.services.http import HttpSettings
from framework.services.logging import LoggingSettings

__all__ = ("LifecycleSettings", "ServiceSettings", "Settings")


class LifecycleSettings(BaseModel):
    """Settings section ``lifecycle``: every bound in seconds."""

    model_config = ConfigDict(extra="forbid")

    start_timeout: float = Field(30.0, gt=0, description="Default bound for one service's start().")
    stop_timeout: float = Field(10.0, gt=0, description="Default bound for one service's stop().")
    startup_timeout: float = Field(60.0, gt=0, description="Bound for the whole startup.")
    shutdown_timeout: float = Field(
        30.0,
        gt=0,
        description="Bound for the whole shutdown; each stop gets min(its own bound, what is left).",
    )
    shutdown_delay: float = Field(
        0.0,
        ge=0,
        description="After shutdown begins, readiness reports not-ready and traffic is still served "
        "for this long before services stop.",
    )
    grace_period: float | None = Field(
        None,
        gt=0,
        description="The platform's grace period between SIGTERM and SIGKILL (Kubernetes "
        "terminationGracePeriodSeconds); `framework check` verifies the budget fits in it.",
    )


class ServiceSettings(BaseModel):
    """Settings section ``services.<name>``: per-service bounds, overriding class attributes."""

    model_config = ConfigDict(extra="forbid")

    start_timeout: float | None = Field(None, gt=0, description="Bound for this service's start().")
    stop_timeout: float | None = Field(None, gt=0, description="Bound for this service's stop().")


class Settings(BaseSettings):
    """The framework's settings. Subclass to add sections of your own.

    Environment variables use the prefix ``APP_`` and ``__`` for nesting
    (``APP_LIFECYCLE__SHUTDOWN_TIMEOUT=5``); change the prefix with
    ``model_config = SettingsConfigDict(env_prefix="MYAPP_")`` in a subclass.
    """

    model_config = SettingsConfigDict(
        env_prefix="APP_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    services: dict[str, ServiceSettings] = Field(
        default_factory=dict, description="Per-service bounds, keyed by service name."
    )
    http: HttpSettings = Field(default_factory=HttpSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # framework.config.load_settings reads every layer itself, to know where each value came
        # from; the model only validates what it is given.
        return (init_settings,)

    def service(self, name: str) -> ServiceSettings:
        """The ``services.<name>`` section (empty when not configured)."""
        return self.services.get(name) or ServiceSettings()
