"""The report's figures: Figures 2, 4 and 6 of the HCDC paper and the correlation bars.

Private to :mod:`harness.report`. Each function takes the prepared rows and the seed
groups and returns ``(figure or None, notes)``: ``None`` with a reason when the rows do not
support the figure, and notes naming the parts left out of a figure that is drawn. All
draw inside :data:`harness.report_style.STYLE` (set by the caller).

- **correlation**: mean Spearman per proxy (bars coloured by search algorithm, std error
  bars over seeds), one panel per task, the task's noise ceiling dashed.
- **figure2** (paper Fig. 2): per task, one strip per proxy and search algorithm: the
  candidates ordered by the proxy's score (best left) and coloured by their true rank
  (light = better, viridis; grey = not scored). The top strip is the oracle's own order.
  Each strip shows the *first ok seed* — a single seed's order, so that the ρ printed
  beside it is that order's Spearman; the mean ± std over seeds follows in parentheses.
- **figure4** (paper Fig. 4): the oracle test accuracy of the search's best-so-far
  candidate (from the row's ``trace``) against search seconds (log scale). Small
  multiples: a row per condenser (its ratios as line styles) and a column per task and
  search algorithm, each panel with the same search on ``original`` in black and the
  optimal candidate's accuracy dotted. **Seeds are averaged**: each seed's trace is a step
  function; the line is their mean on the union of the seeds' trace times, starting once
  every seed has a first candidate, and the band spans the seeds' min to max. A trace
  entry's test accuracy is its third element, which the sweep records (training the
  architectures outside the oracle's table, e.g. GraphNAS children, on the whole data);
  older rows without it are looked up in ``true_test_acc``
  (:func:`harness.report_style.trace_points`).
- **figure6** (paper Fig. 6-style): per task, condenser and search algorithm that
  measured ``proxy_val_acc``, proxy vs true validation accuracy of every candidate for
  each ratio (first ok seed), the selected candidate starred.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from harness.report_style import (  # noqa: E402
    MISSING_COLOUR,
    OK,
    OKABE_ITO,
    ORIGINAL,
    GroupKey,
    RANK_CMAP,
    aggregate,
    algo_order,
    condenser_order,
    condenser_styles,
    display,
    floats,
    ipc_label,
    json_list,
    missing,
    proxy_label,
    trace_points,
    truth,
)

Drawn = tuple["plt.Figure | None", list[str]]
SCATTER_COLUMNS = 4
ROTATE_ABOVE_TICKS = 4  # bar charts with more ticks, or a longer label, slant them
ROTATE_ABOVE_CHARS = 12
LINESTYLES = ("-", "--", ":", "-.")  # one per ipc in Figure 4


def _proxies(rows: pd.DataFrame) -> list[tuple[str, int | None]]:
    """Distinct (condenser, ipc) pairs in the paper's condenser order, ipcs ascending."""
    order = condenser_order(rows["condenser"])
    pairs = {(row.condenser, None if missing(row.ipc) else int(row.ipc)) for row in rows.itertuples()}
    return sorted(pairs, key=lambda pair: (order.index(pair[0]), pair[1] or 0))


def _varies_ipc(rows: pd.DataFrame) -> bool:
    return rows.loc[rows["condenser"] != ORIGINAL, "ipc"].dropna().nunique() > 1


def _first_ok(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["status"] == OK].sort_values("seed", kind="stable")


def _figure_legend(figure: plt.Figure, handles: list[Any], labels: list[str]) -> None:
    figure.legend(handles, labels, loc="outside right center", frameon=False)


# --- correlation bars -------------------------------------------------------------------


def correlation_figure(frame: pd.DataFrame, groups: dict[GroupKey, pd.DataFrame]) -> Drawn:
    """Mean Spearman ± std per proxy and search algorithm, a panel per task, ceiling dashed."""
    if not np.isfinite(frame.loc[frame["status"] == OK, "spearman"].to_numpy(dtype=float)).any():
        return None, ["correlation: no ok row has a Spearman correlation"]
    tasks = sorted(frame["task"].unique())
    algos = algo_order(frame["search_algo"])
    colours = {algo: OKABE_ITO[index % len(OKABE_ITO)] for index, algo in enumerate(algos)}
    widest = max(len(_proxies(frame[frame["task"] == task])) for task in tasks)
    figure, panels = plt.subplots(len(tasks), 1, squeeze=False, layout="constrained",
                                  figsize=(max(5.0, min(16.0, 2.5 + 0.35 * widest * len(algos) + 0.4 * widest)),
                                           3.6 * len(tasks)))
    notes: list[str] = []
    for axes, task in zip(panels[:, 0], tasks):
        rows = frame[frame["task"] == task]
        proxies = _proxies(rows)
        labels = [proxy_label(name, ipc, _varies_ipc(rows)) for name, ipc in proxies]
        width = 0.8 / len(algos)
        lowest = 0.0
        for position, algo in enumerate(algos):
            for index, (name, ipc) in enumerate(proxies):
                key = (task, name, ipc, algo)
                if key not in groups:
                    continue
                stat = aggregate(groups[key], "spearman")
                x = index + (position - (len(algos) - 1) / 2) * width
                if stat.n == 0:
                    word = "failed" if stat.failed else "skipped" if stat.skipped else "no value"
                    axes.text(x, 0.02, word, rotation=90, ha="center", va="bottom", fontsize=8, color="#555555")
                    notes.append(f"correlation: no Spearman for {' / '.join(map(str, key))} ({word})")
                    continue
                axes.bar(x, stat.mean, width, yerr=stat.std, capsize=3, color=colours[algo],
                         error_kw={"elinewidth": 1, "ecolor": "#333333"})
                lowest = min(lowest, stat.mean - stat.std)
        ceiling = rows.loc[rows["status"] == OK, "noise_ceiling_spearman"].mean()
        title = display(task)
        if math.isnan(ceiling):
            notes.append(f"correlation: {task} has no noise_ceiling_spearman; ceiling line omitted")
        else:
            axes.axhline(ceiling, color="black", linestyle="--", linewidth=1.2)
            title += f" (noise ceiling ρ = {ceiling:.2f})"
        axes.axhline(0, color="#666666", linewidth=0.8)
        axes.set_ylim(min(0.0, lowest) - 0.05, 1.08)
        slanted = len(labels) > ROTATE_ABOVE_TICKS or max(map(len, labels)) > ROTATE_ABOVE_CHARS
        axes.set_xticks(range(len(labels)), labels, rotation=30 if slanted else 0,
                        ha="right" if slanted else "center", rotation_mode="anchor")
        axes.grid(axis="x", visible=False)
        axes.set_ylabel("Spearman ρ with ground truth\n(mean ± std over seeds)")
        axes.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[algo]) for algo in algos]
    handles.append(Line2D([], [], color="black", linestyle="--"))
    _figure_legend(figure, handles, [display(algo) for algo in algos] + ["noise ceiling"])
    figure.suptitle(f"Ranking quality per proxy — sweep {', '.join(map(str, frame['sweep'].dropna().unique()))}")
    return figure, notes


# --- figure 2: rankings -----------------------------------------------------------------


def rankings_figure(frame: pd.DataFrame, groups: dict[GroupKey, pd.DataFrame]) -> Drawn:
    """Figure 2: per proxy, candidates in proxy order coloured by true rank, ρ beside."""
    notes: list[str] = []
    panels = []
    for task in sorted(frame["task"].unique()):
        strips, breaks = [], []
        rows = frame[frame["task"] == task]
        multi_algo = rows["search_algo"].nunique() > 1
        for algo in algo_order(rows["search_algo"]):
            breaks.append(len(strips))
            for name, ipc in _proxies(rows):
                key = (task, name, ipc, algo)
                strip = _strip(groups.get(key))
                if strip is not None:
                    label = proxy_label(name, ipc, _varies_ipc(rows)) + (f" · {display(algo)}" if multi_algo else "")
                    strips.append((label, *strip))
                elif key in groups:
                    notes.append(f"figure2: {' / '.join(map(str, key))} has no ok row with scores and ground truth")
        if strips:
            panels.append((task, rows, strips, breaks[1:]))
    if not panels:
        return None, notes + ["figure2: no ok row has scores and ground truth"]
    heights = [len(strips) + 1 for _, _, strips, _ in panels]
    figure, grid = plt.subplots(len(panels), 1, squeeze=False, layout="constrained",
                                figsize=(9.0, 1.4 + 0.3 * sum(heights) + 0.9 * len(panels)),
                                gridspec_kw={"height_ratios": heights})
    cmap = plt.get_cmap(RANK_CMAP).with_extremes(bad=MISSING_COLOUR)
    for axes, (task, rows, strips, breaks) in zip(grid[:, 0], panels):
        n = strips[0][1].size
        image = np.full((len(strips) + 1, n), np.nan)
        image[0] = np.sort(_lightness(strips[0][1]))[::-1]
        for index, (_, _, values, _) in enumerate(strips, 1):
            image[index, : values.size] = values
        shown = axes.imshow(np.ma.masked_invalid(image), aspect="auto", cmap=cmap, vmin=0, vmax=1,
                            interpolation="nearest")
        axes.set_yticks(range(len(strips) + 1), ["Oracle (true order)"] + [label for label, *_ in strips])
        ceiling = rows.loc[rows["status"] == OK, "noise_ceiling_spearman"].mean()
        texts = ["" if math.isnan(ceiling) else f"noise ceiling {ceiling:.2f}"] + [text for *_, text in strips]
        for index, text in enumerate(texts):
            axes.annotate(text, (1.0, index), xycoords=("axes fraction", "data"), xytext=(6, 0),
                          textcoords="offset points", va="center", fontsize=9)
        for position in [0] + breaks:  # white rules under the oracle and between search algorithms
            axes.axhline(position + 0.5, color="white", linewidth=3)
        axes.grid(False)
        axes.set_xticks([0, n - 1], ["best", "worst"])
        axes.set_xlabel(f"{n} candidates, ordered by the proxy's score (first ok seed)")
        axes.set_title(f"{display(task)}: candidates coloured by true rank (light = better, grey = not scored)")
    colourbar = figure.colorbar(shown, ax=grid[:, 0].tolist(), location="bottom", shrink=0.5, aspect=30)
    colourbar.set_ticks([0, 1], labels=["worst", "best"])
    colourbar.set_label("true rank (oracle)")
    return figure, notes


def _strip(rows: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray, str] | None:
    """The first ok seed's candidates in proxy order as lightness (NaN: not scored) and its ρ text."""
    if rows is None:
        return None
    for _, row in _first_ok(rows).iterrows():
        scores, quality = floats(row["scores"]), truth(row)
        if scores is None or quality is None or scores.size != quality.size or not np.isfinite(scores).any():
            continue
        order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
        values = _lightness(quality)[order]
        values[~np.isfinite(scores[order])] = np.nan
        stat = aggregate(rows, "spearman")
        text = f"ρ = {row['spearman']:.2f}" if not missing(row["spearman"]) else "ρ undefined"
        if stat.n > 1:
            text += f"  ({stat.mean:.2f} ± {stat.std:.2f}, {stat.n} seeds)"
        return quality, values, text
    return None


def _lightness(quality: np.ndarray) -> np.ndarray:
    """1 for the truly best candidate down to 0 for the worst (rank-based)."""
    ranks = np.empty(quality.size)
    ranks[np.argsort(-np.nan_to_num(quality, nan=-np.inf), kind="stable")] = np.arange(quality.size)
    return 1.0 - ranks / max(quality.size - 1, 1)


# --- figure 4: best found vs search time ------------------------------------------------


def search_time_figure(frame: pd.DataFrame, groups: dict[GroupKey, pd.DataFrame]) -> Drawn:
    """Figure 4: test accuracy of the best-so-far candidate vs search seconds.

    Small multiples: a row per condenser, a column per (task, search algorithm); each panel
    holds that condenser's ratios and, in black, the same search on the original data.
    """
    notes: list[str] = []
    traces: dict[GroupKey, list[tuple[np.ndarray, np.ndarray]]] = {}
    for key, rows in groups.items():
        found = [trace for trace in map(trace_points, _first_ok(rows).to_dict("records")) if trace]
        if found:
            traces[key] = found
        else:
            notes.append(f"figure4: {' / '.join(map(str, key))} has no ok row with a usable trace")
    if not traces:
        return None, ["figure4: no ok row has a search trace"]
    columns = sorted({(task, algo) for task, _, _, algo in traces},
                     key=lambda column: (column[0], algo_order(frame["search_algo"]).index(column[1])))
    condensers = [name for name in condenser_order(key[1] for key in traces) if name != ORIGINAL] or [ORIGINAL]
    ipcs = sorted({key[2] for key in traces if key[2] is not None})
    dashes = {ipc: LINESTYLES[index % len(LINESTYLES)] for index, ipc in enumerate(ipcs)}
    styles = condenser_styles(frame["condenser"])
    figure, grid = plt.subplots(len(condensers), len(columns), squeeze=False, sharex="col", sharey=True,
                                layout="constrained", figsize=(2.0 + 3.2 * len(columns), 1.6 + 2.1 * len(condensers)))
    for row, name in enumerate(condensers):
        for column, (task, algo) in enumerate(columns):
            axes = grid[row, column]
            if not any(key[:2] == (task, name) and key[3] == algo for key in traces):
                ran = any(key[:2] == (task, name) and key[3] == algo for key in groups)
                axes.text(0.5, 0.5, "no ok seed with a trace" if ran else "not run", transform=axes.transAxes,
                          ha="center", va="center", fontsize=8, color="#555555")
            for key in sorted((key for key in traces if key[0] == task and key[3] == algo
                               and key[1] in (name, ORIGINAL)), key=lambda key: (key[1] == ORIGINAL, key[2] or 0)):
                colour, marker = styles[key[1]]
                times, mean, low, high = _mean_trace(traces[key])
                axes.fill_between(times, low, high, step="post", color=colour, alpha=0.15, linewidth=0)
                axes.plot(times, mean, drawstyle="steps-post", color=colour, linewidth=1.5, marker=marker,
                          markevery=[len(times) - 1], markersize=5, linestyle=dashes.get(key[2], "-"))
            optimal = frame.loc[(frame["task"] == task) & (frame["status"] == OK), "optimal_perf"].mean()
            if not math.isnan(optimal):
                axes.axhline(optimal, color="#666666", linestyle=":", linewidth=1.2)
            axes.set_xscale("log")
            axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))  # 1, 3, 10, 30, ... seconds
            axes.xaxis.set_major_formatter(FuncFormatter(lambda seconds, _: f"{seconds:g}"))
            axes.xaxis.set_minor_formatter(NullFormatter())
            if row == 0:
                axes.set_title(f"{display(task)} · {display(algo)}")
            if column == 0:
                axes.set_ylabel(display(name), fontweight="bold")
    handles = [Line2D([], [], color="#444444", linestyle=dashes[ipc]) for ipc in ipcs]
    labels = [f"IPC {ipc}" for ipc in ipcs]
    handles += [Line2D([], [], color="black", marker="o"), Line2D([], [], color="#666666", linestyle=":"),
                plt.Rectangle((0, 0), 1, 1, color="#444444", alpha=0.15)]
    labels += ["Original (whole data)", "optimal candidate", "min–max over seeds"]
    _figure_legend(figure, handles, labels)
    figure.supxlabel("search time (s, log scale)")
    figure.supylabel("test acc. of best-so-far (%)")
    figure.suptitle("Best candidate found vs search time (mean over seeds)")
    return figure, notes


def _mean_trace(traces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Mean, min and max of step functions on the union of their times, once all have started."""
    start = max(times[0] for times, _ in traces)
    grid = np.unique(np.concatenate([times for times, _ in traces]))
    grid = grid[grid >= start]
    values = np.stack([accs[np.searchsorted(times, grid, side="right") - 1] for times, accs in traces])
    return grid, values.mean(axis=0), values.min(axis=0), values.max(axis=0)


# --- figure 6: proxy vs true validation accuracy ----------------------------------------


def scatter_figure(frame: pd.DataFrame, groups: dict[GroupKey, pd.DataFrame]) -> Drawn:
    """Figure 6-style: proxy vs true val. accuracy per candidate, per condenser, ratios coloured."""
    notes: list[str] = []
    panels = []
    multi_task = frame["task"].nunique() > 1
    for task in sorted(frame["task"].unique()):
        rows = frame[frame["task"] == task]
        multi_algo = rows["search_algo"].nunique() > 1
        for algo in algo_order(rows["search_algo"]):
            missed, found_any = [], False
            for name in condenser_order(rows["condenser"]):
                points = []
                for _, ipc in (proxy for proxy in _proxies(rows) if proxy[0] == name):
                    found = _scatter_points(groups.get((task, name, ipc, algo)))
                    if found is None and (task, name, ipc, algo) in groups:
                        missed.append(f"{name} / {ipc_label(ipc)}")
                    elif found is not None:
                        points.append((ipc, *found))
                if points:
                    found_any = True
                    title = (f"{display(task)} · " if multi_task else "") + display(name)
                    panels.append((title + (f" · {display(algo)}" if multi_algo else ""), points))
            if not found_any:
                notes.append(f"figure6: {algo} on {task} records no proxy_val_acc")
            elif missed:
                notes.append(f"figure6: no ok row with proxy_val_acc for {algo} on {task}: {', '.join(missed)}")
    if not panels:
        return None, notes + ["figure6: no ok row has proxy_val_acc (only searches that train candidates do)"]
    ipcs = sorted({ipc for _, points in panels for ipc, *_ in points}, key=lambda ipc: -1 if ipc is None else ipc)
    colours = {ipc: OKABE_ITO[index % 7] for index, ipc in enumerate(ipc for ipc in ipcs if ipc is not None)}
    colours[None] = "#000000"  # original, as in every figure
    columns = min(len(panels), SCATTER_COLUMNS)
    rows_of_panels = math.ceil(len(panels) / columns)
    figure, grid = plt.subplots(rows_of_panels, columns, squeeze=False, layout="constrained",
                                figsize=(3.4 * columns + 1.2, 3.1 * rows_of_panels + 0.5))
    for axes, (title, points) in zip(grid.flat, panels):
        rhos = []
        for ipc, proxy, true, selected, rho in points:
            axes.scatter(proxy, true, s=18, alpha=0.8, color=colours[ipc], edgecolors="white", linewidths=0.4)
            if selected is not None:
                axes.scatter(*selected, s=150, marker="*", color=colours[ipc], edgecolors="black",
                             linewidths=0.8, zorder=3)
            rhos.append(f"{rho:.2f}" if len(points) == 1 else f"{rho:.2f} (IPC {ipc_label(ipc)})")
        axes.set_title(f"{title}\nρ = {', '.join(rhos)}")
        axes.set_xlabel("proxy val. accuracy (%)")
        axes.set_ylabel("true val. accuracy (%)")
    for axes in grid.flat[len(panels):]:
        axes.set_visible(False)
    handles = [Line2D([], [], marker="o", linestyle="", color=colours[ipc]) for ipc in ipcs]
    labels = [f"IPC {ipc}" if ipc is not None else "Original (whole data)" for ipc in ipcs]
    handles.append(Line2D([], [], marker="*", linestyle="", markersize=12, color="white", markeredgecolor="black"))
    _figure_legend(figure, handles, labels + ["selected candidate"])
    figure.suptitle("Proxy vs true validation accuracy per candidate (first ok seed; ρ: Spearman of the scores)")
    return figure, notes


def _scatter_points(rows: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray, Any, float] | None:
    """The first ok seed's (proxy, true) val. accuracies, its selected point and Spearman."""
    if rows is None:
        return None
    for _, row in _first_ok(rows).iterrows():
        proxy, true = floats(row["proxy_val_acc"]), floats(row["true_val_acc"])
        if proxy is None or true is None or proxy.size != true.size:
            continue
        keep = np.isfinite(proxy) & np.isfinite(true)
        if not keep.any():
            continue
        candidates = json_list(row["candidates"]) or []
        selected = None
        if row["selected"] in candidates and keep[candidates.index(row["selected"])]:
            index = candidates.index(row["selected"])
            selected = (proxy[index], true[index])
        return proxy[keep], true[keep], selected, float(row["spearman"])
    return None
