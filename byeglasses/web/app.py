"""The page: Gradio Blocks around a RemovalService. `running(...)` starts it on a local port and
cleans up its temporary folder when done."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from ..errors import ByeGlassesError
from ..files import IMAGE_SUFFIXES
from ..pipeline.remover import BLENDS, RemovalSettings
from . import INSTALL_HINT
from .service import MB, RemovalService, summary

TITLE = "byeglasses: remove eyeglasses from face photos"
PREVIEW_HEIGHT = 480  # CSS pixels of each preview on the page
AUTO = "auto"  # the device choice for RemovalSettings.device=None: CUDA, else MPS, else CPU


def require_gradio() -> None:
    """A ByeGlassesError that says what to install where Gradio is missing (without importing it)."""
    if importlib.util.find_spec("gradio") is None:
        raise ByeGlassesError(f"the web page needs Gradio, which is not installed: {INSTALL_HINT}")


def import_gradio():
    require_gradio()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio

    return gradio


def device_choices(default: str):
    import torch

    choices = [AUTO, "cpu"] + ([] if default in (AUTO, "cpu") else [default])
    choices += [f"cuda:{i}" for i in range(torch.cuda.device_count()) if f"cuda:{i}" != default]
    if default != "mps" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        choices.append("mps")
    return choices


def build_app(service: RemovalService):
    """The Blocks of the page. Per request: the uploaded files and settings in; (summary,
    [PhotoResult]) out into a gr.State (one per browser session), rendered one panel per photo."""
    gr = import_gradio()
    defaults = service.defaults
    default_device = defaults.device or AUTO
    example_path = str(service.example())

    def process(files, threshold, glasses_threshold, blend, frame_lines, skip_invented_eyes, passes, min_area,
                min_change, min_face, device):
        paths = [f if isinstance(f, str) else getattr(f, "name", f) for f in (files or [])]
        if not paths:
            return ("Choose one or more photos first, or try the example.", [])
        try:
            settings = replace(defaults, threshold=float(threshold), glasses_threshold=float(glasses_threshold),
                               blend=blend, frame_lines=bool(frame_lines), skip_invented_eyes=bool(skip_invented_eyes),
                               passes=int(passes), min_area=float(min_area),
                               min_change=float(min_change), min_face=float(min_face or 0) or None,
                               device=None if device in (None, AUTO) else device)
            results = service.process(paths, settings)
        except ByeGlassesError as e:
            return (f"**Error:** {e}", [])
        except Exception as e:  # noqa: BLE001 - the page shows a message, never a traceback
            return (f"**Error:** unexpected {type(e).__name__}: {e}", [])
        return (summary(results), results)

    with gr.Blocks(title=TITLE, delete_cache=(600, 3600)) as app:
        gr.Markdown(f"# {TITLE}\nUpload photos with faces; each comes back without glasses, at full resolution, "
                    "in its own format with its EXIF and colour profile kept. Nothing leaves this computer.")
        with gr.Row():
            files = gr.File(label="Photos", file_count="multiple", type="filepath",
                            file_types=sorted(IMAGE_SUFFIXES), elem_id="photos")
            with gr.Column():
                run = gr.Button("Remove glasses", variant="primary", elem_id="run")
                example = gr.Button("Try the example: the astronaut with drawn glasses", elem_id="example")
                with gr.Accordion("Advanced settings", open=False):
                    glasses_threshold = gr.Slider(
                        0, 1, value=defaults.glasses_threshold, step=0.01, label="glasses threshold",
                        info="faces the glasses classifier gives a lower P(glasses) are left alone; 0: every face")
                    threshold = gr.Slider(0, 1, value=defaults.threshold, step=0.01, label="mask threshold",
                                          info="mask probability from which a pixel counts as glasses")
                    blend = gr.Radio(list(BLENDS), value=defaults.blend, label="blend",
                                     info="mask: the whole glasses region; change: keep pixels the model "
                                          "barely changes (sharper eyes, more frame left); lens: keep the face seen "
                                          "through clear lenses, tint taken off")
                    frame_lines = gr.Checkbox(value=defaults.frame_lines, label="take thin frame lines off",
                                              info="lens blend: thin lines along the frame take the model's "
                                                   "pixels instead of the photo's (thin metal rims)")
                    skip_invented_eyes = gr.Checkbox(
                        value=defaults.skip_invented_eyes, label="leave faces whose eyes would be invented",
                        info="sunglasses stay on where the model would have to make the eyes up (closer to the person)")
                    passes = gr.Number(value=defaults.passes, minimum=1, precision=0, label="passes",
                                       info="faces still wearing glasses go through the model again, up to this")
                    min_area = gr.Number(value=defaults.min_area, minimum=0, maximum=1, label="min glasses area",
                                         info="faces with less of their crop predicted as glasses are left alone")
                    min_change = gr.Number(value=defaults.min_change, minimum=0, label="min change (levels of 255)",
                                           info="faces the model would change less are left alone")
                    min_face = gr.Number(value=defaults.min_face or 0, minimum=0,
                                         label="smallest face (px, 0 = 1/8 of the long side)")
                    device = gr.Dropdown(device_choices(default_device), value=default_device, label="device")
        shown = gr.State(("", []))  # (summary, [PhotoResult]) of this browser session's last request
        inputs = [files, threshold, glasses_threshold, blend, frame_lines, skip_invented_eyes, passes, min_area,
                  min_change, min_face, device]

        run.click(process, inputs, shown, concurrency_limit=4)
        example.click(lambda: [example_path], None, files, queue=False).then(
            process, inputs, shown, concurrency_limit=4)

        @gr.render(inputs=shown)
        def show(state):
            message, items = state
            gr.Markdown(message, elem_id="status")
            for item in items:
                with gr.Group(elem_classes=["photo-result"]):
                    if not item.ok:
                        gr.Markdown(f"**{item.name}**: could not be processed\n\n{item.message}",
                                    elem_classes=["photo-error"])
                        continue
                    gr.Markdown(f"**{item.name}**\n\n" + item.message.replace("\n", "\n\n"),
                                elem_classes=["photo-decisions"])
                    with gr.Row():
                        gr.ImageSlider(value=(str(item.before), str(item.after)), type="filepath",
                                       label="before | after (drag the handle)", buttons=[], height=PREVIEW_HEIGHT)
                        gr.Image(value=str(item.overlay), type="filepath", label="predicted glasses (red)",
                                 interactive=False, buttons=[], height=PREVIEW_HEIGHT)
                    gr.DownloadButton(f"Download {item.download.name} (full resolution)", value=str(item.download),
                                      elem_classes=["photo-download"])
    return app


@contextlib.contextmanager
def running(defaults: RemovalSettings = RemovalSettings(), host: str = "127.0.0.1", port: int = 7860,
            max_upload_mb: float = 25.0, quiet: bool = True) -> Iterator[str]:
    """Serve the page on host:port; yields its URL. `defaults`: the checkpoint, the device and the
    settings the page starts with. Everything written goes to one temporary
    folder (uploads, previews, results), deleted on exit. Gradio reads that folder when first
    imported: import it only here, so that nothing lands in the system's temporary folder."""
    require_gradio()
    workdir = Path(tempfile.mkdtemp(prefix="byeglasses-serve-"))
    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "gradio")  # Gradio's uploads and previews
    app = None
    try:
        gr = import_gradio()
        service = RemovalService(workdir, defaults, max_upload_mb=max_upload_mb)
        app = build_app(service)
        app.queue(default_concurrency_limit=4)
        try:
            app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=quiet,
                       max_file_size=int(max_upload_mb * MB), allowed_paths=[str(workdir)],
                       show_error=False, footer_links=[], theme=gr.themes.Default())
        except OSError as e:
            raise ByeGlassesError(f"cannot listen on {host}:{port} ({e}); choose another --port") from None
        yield app.local_url if host in ("127.0.0.1", "localhost") else f"http://{host}:{port}/"
    finally:
        if app is not None:
            app.close()
        if old is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = old
        shutil.rmtree(workdir, ignore_errors=True)
