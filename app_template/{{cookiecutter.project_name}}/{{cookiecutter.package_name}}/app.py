"""The application: `framework run {{ cookiecutter.package_name }}.app:App`."""

from framework import Application

from {{ cookiecutter.package_name }}.container import Container
from {{ cookiecutter.package_name }}.settings import AppSettings


class App(Application):
    container_class = Container
    settings_class = AppSettings


if __name__ == "__main__":
    App.main()
