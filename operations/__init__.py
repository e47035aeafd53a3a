"""Running the service: metrics, request logs, health checks and file retention.

No BentoML imports: the service wires these in.
"""
