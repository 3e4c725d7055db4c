"""Replica metrics (sampled with psutil into Redis) and the platform's Prometheus metrics."""
