"""Pictures: scene graph drawings, layout drawings, image sheets, loss curves and tensor <-> PIL.

The drawing functions return ``PIL.Image.Image`` objects (RGB). One module per kind of picture:

* ``colors``: the class palette (``class_color``), shared by every drawing, so a layout looks
  the same in ``draw_layout``, ``colorize_layout`` and the object boxes of ``draw_scene_graph``;
* ``pil``: ``to_pil`` / ``from_pil`` and the helpers the drawings share;
* ``graphs``: ``draw_scene_graph`` (graphviz ``dot`` when installed, else networkx);
* ``layouts``: ``draw_layout`` and ``colorize_layout`` (layout tensors for sample grids);
* ``sheets``: ``make_sheet`` (and ``sheet_rows_that_fit``, to check a sheet first);
* ``curves``: ``plot_loss_curves`` (a run's ``stats.jsonl`` as a PNG).

Tensors are accepted wherever arrays are (anything with ``.detach()`` is moved to the CPU
first). matplotlib and networkx are imported inside the functions that draw with them, so
importing this package (and ``sg2img --help``) does not pay for them.
"""

from .colors import PALETTE_SIZE, class_color, class_palette, name_color, text_color
from .curves import MAX_STATS_BYTES, plot_loss_curves
from .graphs import MAX_DRAW_OBJECTS, MAX_DRAW_RELATIONSHIPS, draw_scene_graph
from .layouts import colorize_layout, draw_layout
from .pil import MAX_LABEL_CHARS, from_pil, to_pil
from .sheets import MAX_SHEET_PIXELS, make_sheet, sheet_rows_that_fit

__all__ = ["MAX_DRAW_OBJECTS", "MAX_DRAW_RELATIONSHIPS", "MAX_LABEL_CHARS", "MAX_SHEET_PIXELS",
           "MAX_STATS_BYTES", "PALETTE_SIZE", "class_color", "class_palette", "colorize_layout",
           "draw_layout", "draw_scene_graph", "from_pil", "make_sheet", "name_color",
           "plot_loss_curves", "sheet_rows_that_fit", "text_color", "to_pil"]
