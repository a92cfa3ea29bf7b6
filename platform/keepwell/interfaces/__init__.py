"""The interfaces: the CLI, the HTTP app (REST API and admin), the workers. Each parses its
input, calls one use case and renders the answer; the composition roots among them read the
settings and build the service and the channels (`wiring`)."""
