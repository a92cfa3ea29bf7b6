"""Rulesets: documents (YAML/JSON), their JSON Schemas and validation, immutable versions and
drafts, the compiler and the rules-engine adapter, the event catalog, template packs. It
imports no other area: the areas register the event types and ruleset kinds they own."""
