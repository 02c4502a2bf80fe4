"""A to-do list service: FastAPI endpoints wired by dependency-injector, synchronous SQLAlchemy."""
