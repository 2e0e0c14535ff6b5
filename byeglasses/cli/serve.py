"""`byeglasses serve`: the web page on a local port (needs the `web` extra: Gradio)."""

from __future__ import annotations

import signal
import time

from ..errors import ByeGlassesError
from .remove import DEFAULTS, _add_model_options, settings_from_args

DEFAULT_MAX_UPLOAD_MB = 25.0


def configure_parser(p) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 lets other computers on the network use the page")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    _add_model_options(p)  # as `remove`: the page starts with these settings (its advanced settings)
    p.add_argument("--min-face", type=float, default=DEFAULTS.min_face,
                   help="smallest face to process, in pixels (dlib box side); default: 1/8 of the photo's long side")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                   help="largest photo file accepted, in MB (2^20 bytes, as the page counts them)")


def _interrupt(*_):
    raise KeyboardInterrupt


def run(args) -> int:
    if not 0 < args.max_upload_mb <= 10_000:
        raise ByeGlassesError(f"--max-upload-mb must be within 0..10000, got {args.max_upload_mb:g}")
    if not 0 < args.port < 65536:
        raise ByeGlassesError(f"--port must be within 1..65535, got {args.port}")
    from ..web.app import require_gradio, running

    require_gradio()  # says what to install before anything slow happens
    # SIGTERM (e.g. from a service manager) ends the server like Ctrl+C: the temporary folder is deleted.
    signal.signal(signal.SIGTERM, _interrupt)
    with running(settings_from_args(args), host=args.host, port=args.port,
                 max_upload_mb=args.max_upload_mb) as url:
        print(f"byeglasses serve: open {url} in a browser (Ctrl+C stops the server)", flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"byeglasses serve: note: listening on {args.host}: other computers can use this page",
                  flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    print("byeglasses serve: stopped; temporary files deleted", flush=True)
    return 0
