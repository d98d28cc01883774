"""The worker protocol: the grader's side (client), the worker's (worker), and what both speak (wire)."""

TEMPLATE_FLAG = "--template"  # the worker's argument that makes it a template (worker.py: Template)
CONNECT_FLAG = "--connect"  # then a Unix socket's path: the worker's link to the grader (the docker sandbox)
