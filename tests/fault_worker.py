"""`keepwell ARGS...` with a test hook installed (the reliability suite's fault injection):

    python fault_worker.py STAGE MARKER worker --burst --name doomed

The first work horse to reach STAGE (one of keepwell.interfaces.jobs.hooks.STAGES) creates
MARKER, which must not exist yet (so only one job, once, is affected), and then waits there,
holding whatever it holds (an open transaction, a claimed message), until the test SIGKILLs it
with its worker. The hook is installed through the jobs' hook interface; production code has no
fault logic of its own."""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    stage, marker, *args = sys.argv[1:]
    from keepwell.interfaces.jobs import hooks

    def stop_there(name: str) -> None:
        if name != stage:
            return
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # fired once already
        os.write(fd, f"{os.getpid()} {stage}\n".encode())
        os.close(fd)
        while True:
            time.sleep(3600)

    hooks.install(stop_there)
    from keepwell.cli import main as keepwell

    keepwell(args, prog_name="keepwell")


if __name__ == "__main__":
    main()
