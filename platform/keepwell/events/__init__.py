"""Events: intake (validated, stored once per company and key), the pipeline that takes one
event (or a batch) through the handlers and rules the areas register, and due work."""
