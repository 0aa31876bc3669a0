"""The edge sync: an outbox written with every change, delivered to edge targets (docs/edge-sync.md).

Kept empty on purpose: services import `billing_core.sync.outbox` on their write paths, and that must not
pull in the targets (redis, httpx) or the delivery shell.
"""
