"""The dynoline operator (kopf): DynoLine and SentinelRule custom resources → Kubernetes objects."""
