"""Ray Tune runner: search-space assembly, resources, start/resume of an experiment."""
