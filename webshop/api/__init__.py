"""The JSON API under ``/api``: shared schema pieces and the router that mounts each domain's controllers."""
