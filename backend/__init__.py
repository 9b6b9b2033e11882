"""The reference Django REST backend the middleware talks to, in tests and for local use.

Run it with `python -m backend`, or embed it with `backend.embedded.create_asgi_app`.
"""
