"""Deployments as the platform runs them: the database and Redis side of the deploy pipeline.

``actions`` starts, cancels and removes deployments (API, webhooks, CLI); ``executor`` is what
the Celery tasks do (build, deploy, cancel, remove, reap, reconcile, collect); ``reporting``
adapts the engine's reporter and status changes to the logs and events streams; ``domains``
names and lists hostnames; ``handles`` holds a worker's PM2, Traefik and port allocator;
``pm2_bridge`` drives PM2 without a Node start per call. ``caboose.engine`` stays free of all of
this: it only sees a frozen ``DeploySpec``.
"""
