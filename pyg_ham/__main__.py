"""``python -m pyg_ham``: the ``pyg-ham`` command line, also as ``torchrun ... -m pyg_ham train ...``.

Under ``torchrun`` an error on a rank prints one line naming the rank
(:func:`pyg_ham.train.distributed.error_line`) and ends that rank with status 1; ``torchrun``
then stops the others.
"""
import os
import sys

from pyg_ham.cli import main


def run() -> None:
    """Run the command line (one line per failing rank under ``torchrun``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        sys.exit(main())
    try:
        sys.exit(main())
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - one line per rank instead of N tracebacks
        from pyg_ham.train.distributed import error_line

        line = error_line(exc)
        if line is not None:
            print(line, file=sys.stderr, flush=True)
        sys.stdout.flush()
        # at once: an orderly interpreter exit can block on the process group's threads while a
        # peer waits in a collective; torchrun sees this rank end and stops the others
        os._exit(1)


if __name__ == "__main__":
    run()
