"""A sender process for the crash-kill test: Django loaded once, one forked child per run.

Each "run" line on stdin forks a child that runs `run_dunning` (plan, then send; or
`send_due`, sending alone, when the third argument says so) on its own database
connection and exits; this process prints "pid <child>" when it starts and
"exit <child> <status>" when it is gone. The test kills the child with SIGKILL: a real
sender process dying at a random moment, without paying Django's start-up every round.
"""

import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collections_mgmt.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    date, at = sys.argv[1], sys.argv[2]
    command = sys.argv[3] if len(sys.argv) > 3 else "run_dunning"
    arguments = ["--at", at] if command == "send_due" else ["--date", date, "--at", at]
    # A long-running worker has its URLconf loaded (pay and unsubscribe links) already.
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (importing them is the point)
    connections.close_all()
    for line in sys.stdin:
        if line.strip() != "run":
            break
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                with open(os.devnull, "w") as quiet:
                    call_command(command, *arguments, stdout=quiet)
            except BaseException:  # the status is the report
                status = 1
            os._exit(status)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


if __name__ == "__main__":
    main()
