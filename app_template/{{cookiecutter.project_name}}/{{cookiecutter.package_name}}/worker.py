"""A background worker: `run()` loops until the framework cancels it at shutdown."""

import anyio
from loguru import logger

from framework import Service
{% if cookiecutter.include_database == "yes" %}
from {{ cookiecutter.package_name }}.orders import OrderRepository
{% endif %}from {{ cookiecutter.package_name }}.settings import WorkerSettings


class Worker(Service):
    """Reports how many orders there are, every `worker.interval` seconds.

    At shutdown the framework cancels `run()` first, waits for it, then calls `stop()`; a unit of work
    that must not be interrupted goes under `anyio.CancelScope(shield=True)`.
    """

    def __init__(self, {% if cookiecutter.include_database == "yes" %}orders: OrderRepository, {% endif %}settings: WorkerSettings) -> None:
{% if cookiecutter.include_database == "yes" %}        self.orders = orders
{% endif %}        self.settings = settings
        self.runs = 0

    async def run(self) -> None:
        while True:
            with anyio.CancelScope(shield=True):  # finish a report once begun
                await self.report()
            await anyio.sleep(self.settings.interval)

    async def report(self) -> None:
        self.runs += 1
{% if cookiecutter.include_database == "yes" %}        count = await self.orders.count()
        logger.bind(service="worker").info(f"{count} order(s) so far")
{% else %}        logger.bind(service="worker").info(f"worker run {self.runs}")
{% endif %}
    async def stop(self) -> None:
        logger.bind(service="worker").info(f"worker stopped after {self.runs} run(s)")
