"""The `keepwell` command line."""
