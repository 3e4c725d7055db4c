"""Inbound Git webhooks (GitHub, GitLab): signatures, payloads, watch patterns, and the work a
delivery turns into (a deployment, a preview environment, or nothing, with the reason).

``signatures`` and ``payloads`` are pure (watch patterns live in ``engine.watch``, the build
uses them too); ``processing`` runs in the worker (the ``webhooks.deliver`` task) and changes
rows through ``deploys.actions``.
"""
