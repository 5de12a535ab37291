"""``sg2img serve``: an interactive scene-graph editor in the browser, and its JSON API.

Needs the optional extra ``pip install 'sg2img[serve]'`` (Starlette and uvicorn). The page
(``static/``) is plain HTML, CSS and JavaScript and loads nothing from other hosts.

    from sg2img.serve import make_server
    make_server(host="127.0.0.1", port=8000).run()
"""

from .app import Limits, create_app
from .hosts import AllowedHosts, is_loopback
from .models import ModelRegistry, ServedModel, load_registry
from .server import EditorServer, make_server
from .transport import ConnectionLimits

__all__ = ["AllowedHosts", "ConnectionLimits", "EditorServer", "Limits", "ModelRegistry",
           "ServedModel", "create_app", "is_loopback", "load_registry", "make_server"]
