"""python trainers/launch_local.py --num_workers=2 -- --model_dir=... --train_data=... [pretrain flags]

Starts N `trainers/pretrain.py --strategy=multi_worker` processes on 127.0.0.1 with free ports and
a TF_CONFIG each, streams their output prefixed by worker, and ends them all as soon as one
fails (exit status: the failing worker's) or when --timeout passes. Worker 0 is the chief.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

PRETRAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrain.py")


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _stream(proc, prefix):
    for line in proc.stdout:
        sys.stdout.write(f"{prefix}{line}")
        sys.stdout.flush()


def launch(num_workers, pretrain_args, timeout, cluster_timeout):
    addresses = [f"127.0.0.1:{p}" for p in free_ports(num_workers)]
    procs = []
    for index in range(num_workers):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}))
        cmd = [sys.executable, PRETRAIN, "--strategy=multi_worker",
               f"--cluster_timeout={cluster_timeout}", *pretrain_args]
        if index:
            cmd.append("--noprogress")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        threading.Thread(target=_stream, args=(proc, f"[worker {index}] "), daemon=True).start()
        procs.append(proc)
    deadline = time.time() + timeout
    status = None
    try:
        while status is None:
            codes = [p.poll() for p in procs]
            failed = [c for c in codes if c not in (None, 0)]
            if failed:
                status = failed[0]
                print(f"error: a worker exited with status {status}; stopping the others",
                      file=sys.stderr)
            elif all(c == 0 for c in codes):
                status = 0
            elif time.time() > deadline:
                status = 124
                print(f"error: workers still running after {timeout:.0f}s; stopping them",
                      file=sys.stderr)
            else:
                time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait()
    return status


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for the whole run")
    parser.add_argument("--cluster_timeout", type=float, default=120,
                        help="seconds for the workers to find each other")
    args, rest = parser.parse_known_args()
    if rest and rest[0] == "--":
        rest = rest[1:]
    sys.exit(launch(args.num_workers, rest, args.timeout, args.cluster_timeout))


if __name__ == "__main__":
    main()
