"""A package named in ``wiring_config.packages``: its submodules are wired too."""
