"""The offline analysis of the A/B test: statistics and the report (scipy, matplotlib).

Workers import this package only to build a report; the per-request gate
(server.experiments) never does, so a worker that only predicts never loads scipy.
"""

__all__: list[str] = []
