"""gensc.app: the application on top of the services: CLI, client, launcher, demo, benchmarks."""
