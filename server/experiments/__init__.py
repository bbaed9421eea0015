"""The A/B test of ML scanning: assignment hash, experiment config, the per-request gate,
and (server.experiments.analysis) the statistics that read its results."""

__all__: list[str] = []
