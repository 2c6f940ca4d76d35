"""The HTML frame every visualizer page shares (assets/page.html: title, style, heading)."""
import os
import tempfile

import q2templates

_ASSETS = os.path.join(os.path.dirname(__file__), "assets")
_PAGE_BODY = "{# the page: assets/<visualizer>.html #}\n"


def render(name, output_dir, context):
    """The page assets/<name>.html in the frame every page shares (assets/page.html: title,
    style, heading). The two are joined as text: q2templates looks for the templates a page
    extends or includes only in its own folder."""
    with open(os.path.join(_ASSETS, "page.html"), encoding="utf-8") as fh:
        page = fh.read()
    with open(os.path.join(_ASSETS, f"{name}.html"), encoding="utf-8") as fh:
        body = fh.read()
    assert page.count(_PAGE_BODY) == 1, "assets/page.html marks where the page goes once"
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "index.html")
        with open(source, "w", encoding="utf-8") as fh:
            fh.write(page.replace(_PAGE_BODY, body))
        q2templates.render(source, output_dir, context=context)
