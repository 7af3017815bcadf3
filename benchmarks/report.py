"""The harness's printouts: the results table, the SVG bar chart and the closing summary."""
from pathlib import Path

# (row key, header, format); a value of None (an engine not installed) prints blank
COLUMNS = [("batch", "batch", "{}"), ("threads", "threads", "{}"),
           ("cnncompile_ms", "cc ms", "{:.3f}"), ("cnncompile_p95_ms", "cc p95", "{:.3f}"),
           ("torch_ms", "torch ms", "{:.3f}"), ("torch_p95_ms", "torch p95", "{:.3f}"),
           ("ort_ms", "ORT ms", "{:.3f}"), ("ort_p95_ms", "ORT p95", "{:.3f}"),
           ("ort_export", "ORT export", "{}"),
           ("ov_ms", "OV ms", "{:.3f}"), ("ov_p95_ms", "OV p95", "{:.3f}"),
           ("ort_ratio", "ORT/cc", "{:.2f}"), ("torch_ratio", "torch/cc", "{:.2f}"),
           ("ov_ratio", "OV/cc", "{:.2f}"), ("gflops", "GFLOP/s", "{:.1f}"),
           ("rel_err", "err/max", "{:.1e}"), ("compile_cold_s", "compile cold s", "{:.2f}"),
           ("compile_cached_s", "compile cached s", "{:.3f}"),
           ("workspace_bytes", "workspace B", "{:,}")]
WIDTHS = {"ort_export": 10, "workspace_bytes": 12}


class Table:
    """Prints the header, then one line per row as results arrive."""

    def __init__(self, model_names):
        self.model_width = max([16] + [len(m) for m in model_names])

    def _line(self, first, cells):
        widths = [max(len(h), WIDTHS.get(k, 7)) for k, h, _ in COLUMNS]
        return "  ".join([first.ljust(self.model_width)] +
                         [c.rjust(w) for c, w in zip(cells, widths)])

    def header(self):
        return self._line("model", [h for _, h, _ in COLUMNS])

    def row(self, row):
        return self._line(row["model"], ["" if row.get(k) is None else fmt.format(row[k])
                                         for k, _, fmt in COLUMNS])


def summary(rows):
    """The closing lines: the lowest speed-up over ORT (and OpenVINO) and the largest error."""
    parts = []
    for key, label in (("ort_ratio", "ORT"), ("ov_ratio", "OV")):
        measured = [r for r in rows if r.get(key) is not None]
        if measured:
            worst = min(measured, key=lambda r: r[key])
            parts.append(f"lowest {label}/cnncompile: {worst[key]:.2f} ({worst['model']}, batch "
                         f"{worst['batch']}, {worst['threads']} threads)")
    parts.append("largest error relative to max|y_torch|: "
                 f"{max(r['rel_err'] for r in rows):.1e}")
    return "; ".join(parts)


def write_svg(rows, path):
    """Grouped bars: ORT, torch and (when measured) OpenVINO time / cnncompile per model and
    setting; 1.0 marked."""
    series = [("ort_ratio", "#4477aa", "ORT"), ("torch_ratio", "#ee7733", "torch"),
              ("ov_ratio", "#228833", "OpenVINO")]
    series = [s for s in series if any(r.get(s[0]) is not None for r in rows)]
    bar, gap, height, left = 12, 10, 260, 50
    group = len(series) * bar + gap
    peak = max(r[k] for r in rows for k, _, _ in series if r.get(k) is not None) * 1.1
    width = left + len(rows) * group + 20
    y = lambda v: 20 + height * (1 - v / peak)  # noqa: E731
    legend = ", ".join(f"{label} ({colour})" for _, colour, label in series)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{max(width, 600)}" '
             f'height="{height + 170}" font-family="sans-serif" font-size="10">',
             f'<text x="{left}" y="12">speed-up of cnncompile: engine time / cnncompile time; '
             f'{legend}</text>',
             f'<line x1="{left}" x2="{width}" y1="{y(1):.1f}" y2="{y(1):.1f}" stroke="black" '
             'stroke-dasharray="4"/>',
             f'<text x="5" y="{y(1) + 3:.1f}">1.0</text>']
    for i, r in enumerate(rows):
        x = left + i * group
        for j, (key, colour, _) in enumerate(series):
            if r.get(key) is None:
                continue
            top = y(r[key])
            parts.append(f'<rect x="{x + j * bar}" y="{top:.1f}" width="{bar - 1}" '
                         f'height="{20 + height - top:.1f}" fill="{colour}"/>')
        label = f'{r["model"]} b{r["batch"]} t{r["threads"]}'
        parts.append(f'<text transform="translate({x + bar},{height + 30}) rotate(60)">{label}</text>')
    parts.append("</svg>")
    Path(path).write_text("\n".join(parts) + "\n")
