"""Reports people read: the customer-base report and campaign results.

Reads features, scores and model metadata (the outputs of ``fidelite.features`` and
``fidelite.training``) and renders them for marketers; ``fidelite.serving`` may serve
what it renders. Nothing here trains or scores.
"""
