"""Start ``chronolog run`` processes in milliseconds, for the kill -9 loops.

Interpreter start-up and imports take most of a second (more on a busy
machine), and a kill loop starts the scheduler fifty times per backend. So
this server imports chronolog once, then forks one child per request, and
each child runs the command line exactly as ``python -m chronolog ARGS``
would, in its own process with its own log lock, event loop and threads --
only the imports are shared. The test kills the children with SIGKILL.

Protocol, one JSON object per line on stdin, one answer per line on stdout:

* ``{"start": ARGS, "cwd": DIR, "stdout": FILE, "stderr": FILE}`` starts
  ``chronolog ARGS`` in ``DIR`` with its output in those files; the answer
  is ``{"pid": PID}``.
* ``{"wait": PID}`` waits for that child to end; the answer is
  ``{"signal": N}`` (killed by signal N) or ``{"exit": N}``.

Run it as ``python tests/kill9_forkserver.py``; it stops at the end of stdin.
"""

from __future__ import annotations

import json
import os
import sys

from chronolog.cli import main


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        if "start" in request:
            answer = {"pid": start(request)}
        else:
            _, status = os.waitpid(request["wait"], 0)
            if os.WIFSIGNALED(status):
                answer = {"signal": os.WTERMSIG(status)}
            else:
                answer = {"exit": os.waitstatus_to_exitcode(status)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def start(request: dict[str, object]) -> int:
    pid = os.fork()
    if pid:
        return pid
    # The child: become `chronolog ARGS`, then leave without running the
    # server's clean-up (it is the server's, not ours).
    code = 1
    try:
        os.chdir(str(request["cwd"]))
        for fd, name in ((1, "stdout"), (2, "stderr")):
            target = os.open(str(request[name]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        sys.stdin.close()
        os.close(0)
        args = [str(arg) for arg in request["start"]]  # type: ignore[attr-defined]
        try:
            main(args=args, prog_name="chronolog")
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:
            code = 0
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    serve()
