"""WhisperLive's WebSocket server on a local CTranslate2 model; run by the peer's own virtualenv.

Started by `WhisperLiveServer` (server.py) with var/peers/whisperlive-venv/bin/python -I, so it
imports nothing from this project. It does what WhisperLive's run_server.py does for
`--backend faster_whisper --faster_whisper_custom_model_path DIR` (one shared model), and refuses
a folder that holds no model so that WhisperLive never falls back to a hub download.
"""

import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-dir", required=True, help="a faster-whisper (CTranslate2) model folder")
    parser.add_argument("--max-clients", type=int, default=4)
    parser.add_argument("--max-connection-time", type=int, default=600, help="seconds")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.model_dir, "model.bin")):
        print(f"no CTranslate2 model (model.bin) in {args.model_dir}", file=sys.stderr)
        return 2

    from whisper_live.server import TranscriptionServer  # type: ignore[import-not-found]

    TranscriptionServer().run(
        args.host,
        port=args.port,
        backend="faster_whisper",
        faster_whisper_custom_model_path=args.model_dir,
        single_model=True,
        max_clients=args.max_clients,
        max_connection_time=args.max_connection_time,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
