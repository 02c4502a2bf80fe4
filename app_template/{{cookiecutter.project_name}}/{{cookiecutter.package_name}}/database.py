"""The database: the built-in service, subclassed to create the schema on start."""

from framework.services import DatabaseService

from {{ cookiecutter.package_name }}.orders import metadata


class OrdersDatabase(DatabaseService):
    async def start(self) -> None:
        await super().start()
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
