"""moto's S3 server with MinIO's command line, keeping its objects in /data across restarts.

``server DIR [--address :PORT] [--console-address ...]``: every request is appended to
DIR/moto-journal.jsonl (moto's recorder); on start the journal is replayed into a private
server on 127.0.0.1 first, then the public one listens on 0.0.0.0:PORT with that state.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import urllib.request
from pathlib import Path


def _options(argv: list[str]) -> tuple[Path, int]:
    data, port = Path("/data"), 9000
    args = iter(argv)
    for arg in args:
        if arg == "server":
            continue
        if arg == "--address":
            port = int(next(args).rpartition(":")[2])
        elif arg.startswith("--"):
            next(args, None)  # --console-address and the like: MinIO's, not ours
        else:
            data = Path(arg)
    return data, port


def main() -> None:
    data, port = _options(sys.argv[1:])
    data.mkdir(parents=True, exist_ok=True)
    journal = data / "moto-journal.jsonl"
    journal.touch()
    os.environ["MOTO_ENABLE_RECORDING"] = "1"
    os.environ["MOTO_RECORDER_FILEPATH"] = str(journal)
    from moto.server import ThreadedMotoServer

    private = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    private.start()
    host, private_port = private.get_host_and_port()
    replay = f"http://{host}:{private_port}/moto-api/recorder/replay-recording"
    urllib.request.urlopen(urllib.request.Request(replay, method="POST"), timeout=600).read()
    print(f"replayed {sum(1 for _ in journal.open())} journalled requests", flush=True)
    public = ThreadedMotoServer(ip_address="0.0.0.0", port=port, verbose=False)
    public.start()
    print(f"S3 (moto) listening on :{port}, objects journalled in {journal}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    public.stop()
    private.stop()


if __name__ == "__main__":
    main()
