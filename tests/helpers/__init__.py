"""Helpers the tests share, one job a module: the repository, what a test requires, a real server,
faults, the Docker engine, other platforms, the structure tests and the Dockerfiles' text."""
