"""The pytest plugin of the framework's testing kit (registered through ``pytest11``)."""
