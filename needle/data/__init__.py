"""Tool-call data: the example schema, the prompt layout, and generators."""
