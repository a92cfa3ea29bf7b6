"""Reporting: read models across the areas (the lists of the admin, its dashboard) and exports."""
