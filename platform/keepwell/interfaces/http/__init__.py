"""The HTTP interface: the REST API and the admin UI on one Flask app."""
