#!/usr/bin/python3
"""Writes tests/data/plot/seaborn-heatmap-reference.json: what matplotlib and seaborn themselves do, for the
renderer's tests. Run with Debian's python3-matplotlib 3.6.3 and python3-seaborn 0.12.2 (the versions that drew
../shared/fixtures/reference/):  /usr/bin/python3 tools/make_plot_reference.py
"""
import json
import pathlib

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib import cm

rng = np.random.default_rng(5)
# Values spanning seaborn's number formats (0.76, 0.0048, 3.2e-10, 1e+02, negatives) and the whole colormap.
values = np.array([[0.76, 0.0048, 3.2e-10, 0.5],
                   [123.0, -0.25, 1.0, 0.063],
                   [0.0, 0.99999, 4.6e-07, 0.33333],
                   [7.5, -3.0, 0.1, 0.45]])
values = np.concatenate([values, rng.normal(0, 1, (4, 4))])
fig, ax = plt.subplots()
sns.heatmap(values, annot=True, cmap="coolwarm", ax=ax)
fig.canvas.draw()
mesh = ax.collections[0]
faces = mesh.get_facecolors()[:, :3].tolist()
texts = [(t.get_text(), list(matplotlib.colors.to_rgb(t.get_color()))) for t in ax.texts]
plt.close(fig)

out = {
    "source": "matplotlib %s cm.coolwarm(np.arange(256)); seaborn %s heatmap(values, annot=True, cmap='coolwarm'): "
              "cell face colours, annotation texts and their colours, row-major" % (matplotlib.__version__, sns.__version__),
    "coolwarm_256": cm.coolwarm(np.arange(256))[:, :3].tolist(),
    "values": values.tolist(),
    "cell_colors": faces,
    "annotations": [t for t, _ in texts],
    "annotation_colors": [c for _, c in texts],
    "python_format_2g": {repr(v): format(v, ".2g") for v in
                         [0.76, 0.0048, 3.2e-10, 1e2, 123.0, -0.25, 1.0, 0.063, 0.0, -0.0, 0.99999, 4.6e-07, 0.33333,
                          0.995, 9.96, 99.5, 1e16, 0.0001, 0.00001, 12345.678, -1e-5]},
    # the other colour maps mmx draws (--cmap) and seaborn fmt= specs (--fmt)
    "colormaps_256": {name: matplotlib.colormaps[name](np.arange(256))[:, :3].tolist()
                      for name in ["bwr", "bwr_r", "gray", "gray_r", "coolwarm_r"]},
    "python_formats": {spec: {repr(v): format(v, spec) for v in
                              [0.76, 0.0048, -0.25, 123.456, 0.0, 1.0, 0.33333, 2.5, 3.5, -7.0, 1e-7]}
                       for spec in [".3f", ".1e", ".0%", ".1%", ".4g", ".0f"]},
    "python_format_d": {repr(v): format(int(v), "d") for v in [0.0, 1.0, -7.0, 123.0, 2.0]},
}
path = pathlib.Path(__file__).resolve().parent.parent / "tests/data/plot/seaborn-heatmap-reference.json"
path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
print("wrote", path)
