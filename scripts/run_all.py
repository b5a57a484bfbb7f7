"""Run the web server, one Celery worker and celery beat together for `make run`.

Stops all three when any of them exits or on Ctrl-C. Production runs them as separate
services instead (see README: gunicorn, several workers, exactly one beat).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = os.environ.get("RUN_HOST", "127.0.0.1")
PORT = os.environ.get("RUN_PORT", "8000")

COMMANDS = {
    "web": [sys.executable, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
    "worker": [
        str(BIN / "celery"),
        "-A",
        "collections_mgmt",
        "worker",
        "--loglevel=INFO",
        "--concurrency=2",
        "--without-gossip",
        "--without-mingle",
    ],
    "beat": [str(BIN / "celery"), "-A", "collections_mgmt", "beat", "--loglevel=INFO"],
}


def main() -> int:
    credentials = Path(os.environ.get("VAR_DIR", ROOT / "var")) / "demo-credentials.txt"
    print("\n" + "=" * 72)
    print(f"Collections console: http://{HOST}:{PORT}/admin/")
    if credentials.exists():
        print(credentials.read_text().strip())
    print("Press Ctrl-C to stop the web server, the worker and beat.")
    print("=" * 72 + "\n", flush=True)
    processes = {
        name: subprocess.Popen(command, cwd=ROOT, start_new_session=True)  # noqa: S603
        for name, command in COMMANDS.items()
    }

    def stop(*_):
        # The main process of each shuts down its own children (Celery's pool, say).
        for process in processes.values():
            if process.poll() is None:
                process.terminate()

    def on_sigterm(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        while all(process.poll() is None for process in processes.values()):
            time.sleep(0.5)
        exited = [name for name, process in processes.items() if process.poll() is not None]
        print(f"{', '.join(exited)} exited; stopping the others.", file=sys.stderr)
    except KeyboardInterrupt:
        print("Stopping the web server, the worker and beat.", file=sys.stderr)
    finally:
        stop()
        for name, process in processes.items():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop within 10 s; killing it.", file=sys.stderr)
                os.killpg(process.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
