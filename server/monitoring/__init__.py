"""Prometheus metrics and the HTTP observer (request ids, access logs)."""
