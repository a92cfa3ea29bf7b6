"""Customers: companies (the tenants), their customers and contact choices, the users who sign
in to the admin, and API keys."""
