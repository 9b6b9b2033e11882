"""How the middleware reaches the Django backend and its own database."""
