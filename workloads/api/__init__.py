"""The resource models: pydantic is the one source of truth for the CLI, the CRDs and the operator."""
