"""`byeglasses serve`: a local web page around the same GlassesRemover as the command line.
`service` does the work (no Gradio needed); `app` builds the page with Gradio (`pip install '.[web]'`)."""

INSTALL_HINT = "pip install 'byeglasses[web]'  (from a checkout: pip install '.[web]')"
