"""Pictures of a network: filter grids and feature-map grids (the optional `viz` extra; the
charts of a run are in charts.py).

Pillow (exact pixel layouts) is imported inside the functions, so importing this module never
fails; a function that draws raises ImportError when Pillow is missing.

Layouts
-------
Every grid is an RGB image of tiles separated by `PAD` pixels of a dark frame colour:
height = rows * (tile_h + PAD) + PAD, width = cols * (tile_w + PAD) + PAD (`grid_size`).

Filters (`save_filters`): a layer's `filter_bank()` (F, C, KH, KW): a conv layer's weight.
  * C = 1 or 3 (the first layer, on gray or RGB images): one tile per filter, `FILTER_COLS`
    per row, each scaled by its own largest |weight|: mid-gray is 0, white positive, black
    negative (RGB filters: each channel the same way, so colour shows the channel mix);
  * C > 3 (deeper layers): one row per filter, one tile per input channel (its KH x KW slice),
    scaled by the filter's largest |weight| so weak input channels show as flat gray; at most
    `MAX_FILTER_ROWS` filters and `MAX_CHANNEL_COLS` input channels are drawn (the rest are
    counted in the returned info).
  (Each layer says what its filters are: `local` layers give those of their central output
  position; a `dense` layer on an image each unit's weights as an image of the input's shape.)

Feature maps (`save_feature_maps`): one tall PNG; a section per image-shaped output (C, H, W)
(the input first, then every layer whose output is still an image), each a `LABEL_H`-pixel
text strip over a grid of its C maps, `FEATURE_COLS` per row, each map min-max scaled on its
own (black = its minimum, white = its maximum). Maps are enlarged by an integer factor so that
every tile is about as large as twice the input (28 -> 56 pixels).
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..errors import ConfigError
from .picture_files import save_png

PAD = 2
FRAME = (36, 36, 56)          # colour between tiles
FILTER_COLS = 8
FEATURE_COLS = 8
MAX_FILTER_ROWS = 64
MAX_CHANNEL_COLS = 32
LABEL_H = 16
FILTER_TILE = 64              # target tile size in pixels for first-layer filters
DEEP_FILTER_TILE = 20         # ... and for (filter, channel) tiles of deeper layers


# --- grids --------------------------------------------------------------------------------------

def grid_size(n: int, tile_h: int, tile_w: int, cols: int, pad: int = PAD) -> tuple[int, int]:
    """(height, width) in pixels of a grid of `n` tiles, `cols` per row."""
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    return rows * (tile_h + pad) + pad, cols * (tile_w + pad) + pad


def grid(tiles: np.ndarray, cols: int, scale: int = 1, pad: int = PAD,
         frame=FRAME) -> np.ndarray:
    """Tiles (n, h, w) or (n, h, w, 3) of uint8 -> an RGB uint8 image (grid_size layout), each
    tile enlarged `scale` times (nearest neighbour)."""
    tiles = np.asarray(tiles)
    if tiles.ndim == 3:
        tiles = np.repeat(tiles[..., None], 3, axis=3)
    n, h, w = tiles.shape[:3]
    th, tw = h * scale, w * scale
    height, width = grid_size(n, th, tw, cols, pad)
    cols = max(1, min(cols, n))
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[...] = frame
    for i in range(n):
        r, c = divmod(i, cols)
        y0, x0 = pad + r * (th + pad), pad + c * (tw + pad)
        img[y0:y0 + th, x0:x0 + tw] = tiles[i].repeat(scale, axis=0).repeat(scale, axis=1)
    return img


def _signed_to_uint8(w: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """0 -> 128, +scale -> 255, -scale -> 0 (scale broadcast against w)."""
    scale = np.where(scale > 0, scale, 1.0)
    return np.clip(np.rint(127.5 + 127.5 * (w / scale)), 0, 255).astype(np.uint8)


def _minmax_to_uint8(m: np.ndarray) -> np.ndarray:
    """Each map (..., H, W) scaled to 0..255 between its own min and max (flat maps -> 0)."""
    lo = m.min(axis=(-2, -1), keepdims=True)
    hi = m.max(axis=(-2, -1), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.clip(np.rint(255.0 * (m - lo) / span), 0, 255).astype(np.uint8)


# --- filters ------------------------------------------------------------------------------------

def filter_layers(net) -> list:
    """Layers whose weights can be drawn as filters (those with a `filter_bank`)."""
    return [l for l in net.layers if l.filter_bank() is not None]


def filter_weights(layer) -> np.ndarray:
    """The layer's filters as (F, C, KH, KW) float64."""
    bank = layer.filter_bank()
    if bank is None:
        raise ConfigError(f"{layer.name} ({layer.type}) has no filters to show")
    return np.asarray(bank, dtype=np.float64)


def pick_filter_layer(net, name: str | None):
    candidates = filter_layers(net)
    if name is None:
        if not candidates:
            raise ConfigError("this model has no conv, local or dense-on-image layer: no "
                              "filters to show")
        return candidates[0]
    for layer in net.layers:
        if layer.name == name:
            if layer not in candidates:
                known = ", ".join(l.name for l in candidates) or "none"
                raise ConfigError(f"layer {name} ({layer.type}) has no filters to show; layers "
                                  f"with filters: {known}")
            return layer
    from ..config.spec import did_you_mean
    raise ConfigError(f"no layer named {name!r}; {did_you_mean(name, [l.name for l in net.layers])}")


def filter_image(layer) -> tuple[np.ndarray, dict]:
    """-> (RGB uint8 image, info) for one layer's filters (see the module docstring)."""
    w = filter_weights(layer)
    f, c, kh, kw = w.shape
    info = {"layer": layer.name, "type": layer.type, "filters": f, "channels": c,
            "kernel": [kh, kw]}
    per_filter = np.abs(w).max(axis=(1, 2, 3))
    if c in (1, 3):
        scale = max(1, FILTER_TILE // max(kh, kw))
        tiles = _signed_to_uint8(w, per_filter[:, None, None, None])
        tiles = tiles[:, 0] if c == 1 else tiles.transpose(0, 2, 3, 1)
        cols = min(f, FILTER_COLS)
        info.update(mode="per filter", shown_filters=f, shown_channels=c, cols=cols,
                    rows=math.ceil(f / cols), scale=scale)
        return grid(tiles, cols, scale), info
    nf, nc = min(f, MAX_FILTER_ROWS), min(c, MAX_CHANNEL_COLS)
    scale = max(1, DEEP_FILTER_TILE // max(kh, kw))
    tiles = _signed_to_uint8(w[:nf, :nc], per_filter[:nf, None, None, None])
    info.update(mode="per (filter, input channel)", shown_filters=nf, shown_channels=nc,
                cols=nc, rows=nf, scale=scale)
    return grid(tiles.reshape(nf * nc, kh, kw), nc, scale), info


def save_filters(net, out: str, layer_name: str | None = None) -> tuple[str, dict]:
    """Write the grid of a layer's filters (the first conv layer by default) to `out`."""
    from PIL import Image

    layer = pick_filter_layer(net, layer_name)
    img, info = filter_image(layer)
    save_png(Image.fromarray(img), out)
    info["size"] = [img.shape[1], img.shape[0]]   # width, height
    return out, info


# --- feature maps -------------------------------------------------------------------------------

def feature_maps(net, x: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """[(name, type, maps (C, H, W))] for the input and every image-shaped layer output of one
    normalised image x (1, C, H, W), evaluation mode. Also returns the logits last as
    ("logits", "", (K,))."""
    out = [("input", "input", np.asarray(x[0], dtype=np.float64))]
    h = x
    for layer in net.layers:
        h, _ = layer.forward(h, train=False)
        if h.ndim == 4:
            out.append((layer.name, layer.type, np.asarray(h[0], dtype=np.float64)))
    out.append(("logits", "", np.asarray(h[0], dtype=np.float64)))
    return out


def save_feature_maps(net, x: np.ndarray, out: str, *, title: str = "",
                      layers: list[str] | None = None) -> tuple[str, list[dict]]:
    """Write one tall PNG of the feature maps of a normalised image x (1, C, H, W).
    -> (path, sections), each section {name, type, shape, cols, rows, scale, top, height, width}
    (top/height in pixels of the label strip plus its grid)."""
    from PIL import Image, ImageDraw, ImageFont

    maps = feature_maps(net, x)
    maps.pop()   # the logits
    if layers:
        known = [m[0] for m in maps]
        unknown = [n for n in layers if n not in known]
        if unknown:
            from ..config.spec import did_you_mean
            raise ConfigError(f"no image-shaped output named {unknown[0]!r}; "
                              f"{did_you_mean(unknown[0], known)}")
        maps = [m for m in maps if m[0] == "input" or m[0] in layers]
    target = max(56, 2 * int(x.shape[2]))
    parts, sections = [], []
    for name, type_, m in maps:
        c, h, w = m.shape
        scale = max(1, round(target / max(h, w)))
        cols = min(c, FEATURE_COLS)
        img = grid(_minmax_to_uint8(m), cols, scale)
        parts.append(img)
        sections.append({"name": name, "type": type_, "shape": [c, h, w], "cols": cols,
                         "rows": math.ceil(c / cols), "scale": scale,
                         "height": LABEL_H + img.shape[0], "width": img.shape[1]})
    width = max(max(p.shape[1] for p in parts), 320)
    height = sum(s["height"] for s in sections) + (LABEL_H if title else 0)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    y = 0
    if title:
        draw.text((PAD, 2), title, fill=(0, 0, 0), font=font)
        y = LABEL_H
    for img, s in zip(parts, sections):
        s["top"] = y
        c, h, w = s["shape"]
        label = f"{s['name']}" + (f" ({s['type']})" if s["type"] != "input" else "") + \
            f": {c} x {h}x{w}"
        draw.text((PAD, y + 2), label, fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(img), (0, y + LABEL_H))
        y += s["height"]
    save_png(canvas, out)
    return out, sections


def save_run_filters(run_dir: str, out: str | None = None) -> str | None:
    """filters.png of a run folder's best (else last) checkpoint, for the end of `fit`.
    -> the path, or None when the folder has no checkpoint or the model no filters.
    ImportError when Pillow is missing."""
    import PIL  # noqa: F401  (fail before loading the checkpoint)

    from .restore import load_for_inference

    for name in ("best.npz", "last.npz"):
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            break
    else:
        return None
    net = load_for_inference(path).net
    if not filter_layers(net):
        return None
    return save_filters(net, out or os.path.join(run_dir, "filters.png"))[0]
