"""Modules wired by dependency-injector in the wiring tests, each in one of the shapes users write."""
