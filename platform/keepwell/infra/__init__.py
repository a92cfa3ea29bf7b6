"""Infrastructure every area stands on: settings, the database and its migrations, and the
unit of work (one transaction's collected writes, undo and ids). It imports the kernel only."""
