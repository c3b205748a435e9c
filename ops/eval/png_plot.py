"""A small line-plot renderer that writes PNG with zlib only (no matplotlib here).

Used by the ops/eval scripts: panels of (x, y) lines with axes, tick labels, a
title per panel and a legend, drawn with a 5x7 bitmap font.
"""
import struct
import zlib

FONT = {  # 5x7 glyphs, one string of 5 bits per row
    '0': ['01110', '10001', '10011', '10101', '11001', '10001', '01110'],
    '1': ['00100', '01100', '00100', '00100', '00100', '00100', '01110'],
    '2': ['01110', '10001', '00001', '00010', '00100', '01000', '11111'],
    '3': ['11110', '00001', '00001', '01110', '00001', '00001', '11110'],
    '4': ['00010', '00110', '01010', '10010', '11111', '00010', '00010'],
    '5': ['11111', '10000', '11110', '00001', '00001', '10001', '01110'],
    '6': ['00110', '01000', '10000', '11110', '10001', '10001', '01110'],
    '7': ['11111', '00001', '00010', '00100', '01000', '01000', '01000'],
    '8': ['01110', '10001', '10001', '01110', '10001', '10001', '01110'],
    '9': ['01110', '10001', '10001', '01111', '00001', '00010', '01100'],
    '.': ['00000', '00000', '00000', '00000', '00000', '01100', '01100'],
    '=': ['00000', '00000', '11111', '00000', '11111', '00000', '00000'],
    '-': ['00000', '00000', '00000', '11111', '00000', '00000', '00000'],
    '_': ['00000', '00000', '00000', '00000', '00000', '00000', '11111'],
    ' ': ['00000'] * 7,
    'A': ['01110', '10001', '10001', '11111', '10001', '10001', '10001'],
    'B': ['11110', '10001', '10001', '11110', '10001', '10001', '11110'],
    'C': ['01110', '10001', '10000', '10000', '10000', '10001', '01110'],
    'D': ['11110', '10001', '10001', '10001', '10001', '10001', '11110'],
    'E': ['11111', '10000', '10000', '11110', '10000', '10000', '11111'],
    'F': ['11111', '10000', '10000', '11110', '10000', '10000', '10000'],
    'G': ['01110', '10001', '10000', '10111', '10001', '10001', '01111'],
    'H': ['10001', '10001', '10001', '11111', '10001', '10001', '10001'],
    'I': ['01110', '00100', '00100', '00100', '00100', '00100', '01110'],
    'K': ['10001', '10010', '10100', '11000', '10100', '10010', '10001'],
    'L': ['10000', '10000', '10000', '10000', '10000', '10000', '11111'],
    'M': ['10001', '11011', '10101', '10101', '10001', '10001', '10001'],
    'N': ['10001', '11001', '10101', '10011', '10001', '10001', '10001'],
    'O': ['01110', '10001', '10001', '10001', '10001', '10001', '01110'],
    'P': ['11110', '10001', '10001', '11110', '10000', '10000', '10000'],
    'R': ['11110', '10001', '10001', '11110', '10100', '10010', '10001'],
    'S': ['01111', '10000', '10000', '01110', '00001', '00001', '11110'],
    'T': ['11111', '00100', '00100', '00100', '00100', '00100', '00100'],
    'U': ['10001', '10001', '10001', '10001', '10001', '10001', '01110'],
    'V': ['10001', '10001', '10001', '10001', '10001', '01010', '00100'],
    'W': ['10001', '10001', '10001', '10101', '10101', '10101', '01010'],
    'X': ['10001', '10001', '01010', '00100', '01010', '10001', '10001'],
    'Y': ['10001', '10001', '01010', '00100', '00100', '00100', '00100'],
}
COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


class Canvas:
    def __init__(self, width, height):
        self.w, self.h = width, height
        self.px = bytearray([255] * (width * height * 3))

    def set(self, x, y, color):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i:i + 3] = bytes(color)

    def line(self, x0, y0, x1, y1, color, thick=1):
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for k in range(n + 1):
            x = round(x0 + (x1 - x0) * k / n)
            y = round(y0 + (y1 - y0) * k / n)
            for dx in range(thick):
                for dy in range(thick):
                    self.set(x + dx, y + dy, color)

    def text(self, x, y, s, color=(0, 0, 0), scale=1):
        for ch in s.upper():
            glyph = FONT.get(ch, FONT[' '])
            for r, row in enumerate(glyph):
                for c, bit in enumerate(row):
                    if bit == '1':
                        for dx in range(scale):
                            for dy in range(scale):
                                self.set(x + c * scale + dx, y + r * scale + dy, color)
            x += 6 * scale

    def save(self, path):
        raw = b''.join(b'\x00' + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3]) for y in range(self.h))

        def chunk(tag, data):
            return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xffffffff)

        with open(path, 'wb') as f:
            f.write(b'\x89PNG\r\n\x1a\n')
            f.write(chunk(b'IHDR', struct.pack('>IIBBBBB', self.w, self.h, 8, 2, 0, 0, 0)))
            f.write(chunk(b'IDAT', zlib.compress(raw, 9)))
            f.write(chunk(b'IEND', b''))


def _fmt(v):
    return ('%.2f' % v) if abs(v) < 100 else ('%d' % round(v))


def plot_panels(path, panels, xlabel='STEPS', ylabel='LOSS', panel_w=360, panel_h=280, skip_fraction=0.0):
    """panels: list of (title, [(name, xs, ys)]); one shared y range, own x range.

    skip_fraction: the y range ignores each line's first points (the start of
    training), and lines are clipped to it, so the late differences are visible."""
    ys_all = [y for _, lines in panels for _, _, ys in lines for y in ys[int(len(ys) * skip_fraction):]]
    lo, hi = min(ys_all), max(ys_all)
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    left, top, bottom, gap = 60, 44, 40, 20
    legend_h = 16 * max(len(lines) for _, lines in panels) + 10
    canvas = Canvas(len(panels) * (panel_w + gap) + left, top + panel_h + bottom + legend_h)
    for p, (title, lines) in enumerate(panels):
        x0 = left + p * (panel_w + gap)
        xs_all = [x for _, xs, _ in lines for x in xs]
        xlo, xhi = min(xs_all), max(xs_all)
        canvas.text(x0 + 4, 4, title, scale=2)
        canvas.line(x0, top, x0, top + panel_h, (0, 0, 0))
        canvas.line(x0, top + panel_h, x0 + panel_w, top + panel_h, (0, 0, 0))
        for k in range(5):
            v = lo + (hi - lo) * k / 4
            y = top + panel_h - round(panel_h * k / 4)
            canvas.line(x0 - 4, y, x0, y, (0, 0, 0))
            canvas.line(x0 + 1, y, x0 + panel_w, y, (225, 225, 225))
            if p == 0:
                canvas.text(2, y - 3, _fmt(v))
            xv = xlo + (xhi - xlo) * k / 4
            x = x0 + round(panel_w * k / 4)
            canvas.line(x, top + panel_h, x, top + panel_h + 4, (0, 0, 0))
            canvas.text(x - 8, top + panel_h + 8, '%d' % round(xv))
        canvas.text(x0 + panel_w // 2 - 15, top + panel_h + 22, xlabel)
        for i, (name, xs, ys) in enumerate(lines):
            color = COLORS[i % len(COLORS)]
            pts = [(x0 + round(panel_w * (x - xlo) / ((xhi - xlo) or 1)),
                    top + panel_h - round(panel_h * (min(max(y, lo), hi) - lo) / (hi - lo))) for x, y in zip(xs, ys)]
            for a, b in zip(pts, pts[1:]):
                canvas.line(a[0], a[1], b[0], b[1], color, thick=2)
    for i, (name, _, _) in enumerate(panels[0][1]):
        y = top + panel_h + bottom + 4 + 16 * i
        color = COLORS[i % len(COLORS)]
        canvas.line(left, y + 3, left + 24, y + 3, color, thick=3)
        canvas.text(left + 32, y, name)
    canvas.text(2, top - 12, ylabel)
    canvas.save(path)
