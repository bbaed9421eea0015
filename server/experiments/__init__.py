"""The A/B test of ML scanning as each request meets it: assignment hash, experiment config
and the per-request gate. The statistics that read its results live in server.analysis."""

__all__: list[str] = []
