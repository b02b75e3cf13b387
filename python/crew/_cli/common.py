"""What the commands share: tables, charts, a progress bar, timing."""
import os
import statistics
import sys
import time


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def timed(fn, *args, **kwargs):
    """(seconds, result) of one call."""
    t = time.perf_counter()
    r = fn(*args, **kwargs)
    return time.perf_counter() - t, r


def _cpu_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)      # idle + iowait
    return sum(v[:8]), idle


def cpus_busy_elsewhere(interval=0.3):
    """How many CPUs other programs kept busy over `interval` seconds (this
    process sleeps meanwhile); None where /proc/stat cannot be read."""
    try:
        t0, i0 = _cpu_jiffies()
        time.sleep(interval)
        t1, i1 = _cpu_jiffies()
    except (OSError, ValueError, IndexError):
        return None
    if t1 <= t0:
        return None
    return (1 - (i1 - i0) / (t1 - t0)) * (os.cpu_count() or 1)


def fmt_seconds(s):
    if s != s:  # nan
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"


def fmt_num(x, unit=""):
    if x is None or x != x:
        return "-"
    if abs(x) >= 1e6:
        s = f"{x / 1e6:.2f} M"
    elif abs(x) >= 1e4:
        s = f"{x / 1e3:.1f} k"
    elif abs(x) >= 100:
        s = f"{x:.0f}"
    elif abs(x) >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.2f}"
    return (s + " " + unit).strip() if unit else s.strip()


def table(headers, rows, align=None):
    """A plain-text table; numbers (and cells ending in a unit) right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    if align is None:
        align = ["l"] + ["r"] * (len(headers) - 1)

    def line(cells):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                         for c, w, a in zip(cells, widths, align)).rstrip()
    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


class Reporter:
    """Prints to stdout without tearing the progress bar drawn on stderr."""

    def __init__(self, total, desc, enabled=True, stream=None):
        self.stream = stream or sys.stdout
        self.lines = []         # everything printed, for the --html report
        self.bar = None
        self.tty = sys.stderr.isatty()
        # progress goes to a terminal only: piped or redirected output (a
        # file, a CI log, `| less`) gets the report alone, never bar text
        if enabled and self.tty:
            try:
                import tqdm
                tqdm.tqdm.monitor_interval = 0   # no monitor thread: it would
                # be a thread in the parent when fork workers start
                self.bar = tqdm.tqdm(total=total, desc=desc, file=sys.stderr, leave=False,
                                     dynamic_ncols=True, mininterval=0.2 if self.tty else 5,
                                     bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                                "{n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
            except ImportError:
                self.bar = None

    def print(self, *parts, sep=" "):
        text = sep.join(str(p) for p in parts)
        self.lines.append(text)
        if self.bar is not None and self.tty:
            self.bar.clear()
            self.stream.write(text + "\n")
            self.stream.flush()
            self.bar.refresh()
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def step(self, what=None, n=1):
        if self.bar is not None:
            if what:
                self.bar.set_postfix_str(what, refresh=False)
            self.bar.update(n)

    def status(self, what):
        if self.bar is not None:
            self.bar.set_postfix_str(what)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def barh(ax, labels, values, colors=None, fmt=None, xlabel="", title="", log=False, inside=False):
    """Horizontal bars, first label on top, each with its value written beside
    it (inside=True: inside the bar's end, so no reference line drawn across
    the chart can run through a value)."""
    ys = list(range(len(labels)))[::-1]
    ax.barh(ys, values, color=colors or "#4C72B0", height=0.6)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    if log:
        ax.set_xscale("log")
    hi = max([v for v in values if v == v and v > 0] or [1])
    if log:
        lo = min([v for v in values if v == v and v > 0] or [1])
        ax.set_xlim(lo * 0.3, hi * 8)
    else:
        ax.set_xlim(0, hi * 1.3)
    for y, v in zip(ys, values):
        if v == v and inside and not log:
            ax.text(v - hi * 0.015, y, fmt(v) if fmt else f"{v:.3g}", va="center", ha="right",
                    fontsize=9, color="white", fontweight="bold")
        elif v == v:
            ax.text(v * (1.05 if log else 1) + (0 if log else hi * 0.01), y,
                    fmt(v) if fmt else f"{v:.3g}", va="center", fontsize=9)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=11)
    ax.grid(axis="x", alpha=0.3)


CREW = "#2a9d8f"      # crew's colour in every chart
PEER = "#8d99ae"
BAD = "#e76f51"
