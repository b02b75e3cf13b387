"""crew's command line: python -m crew demo | bench | info | advise.

    demo    the three lessons of threads vs processes (GIL, IPC, start
            methods) plus I/O and crashes, live on this machine, each with a
            table and a PNG chart, and crew's answer beside the usual tools
    bench   crew against Python's pools (multiprocessing, concurrent.futures,
            joblib/loky, pebble, mpire, Ray; dask if installed): medians,
            ratios, CSV/JSON
    info    the CPUs this process may use, start methods, versions, shared memory
    advise  runs a script unchanged and says, per function it sends to a
            pool, what bounds it and the one change that would make it faster
"""
import argparse
import sys

DESCRIPTION = """\
crew's command line: threads vs processes live on this machine (demo), crew
raced against Python's pools (bench), the machine as crew sees it (info), and
why a script's pool is not faster (advise).
Run python -m crew COMMAND --help for a command's options."""

EPILOG = """\
examples:
  python -m crew demo
      the six lessons, with tables and charts (about a minute)
  python -m crew demo --quick --html report.html
      a quick run, plus a one-page report to open in a browser
  python -m crew bench --quick
      crew against the pools installed here (about a minute)
  python -m crew info --json
      usable CPUs, start methods, shared memory, as JSON
  python -m crew advise my_script.py ARGS
      runs my_script.py as usual, then says what bounds each pooled function

Documentation: make docs builds the site (build/docs/html/index.html);
its page "Command line" has every command's help."""


def parser():
    """The argument parser of python -m crew and its commands."""
    from . import advise, bench, demo, info
    p = argparse.ArgumentParser(prog="python -m crew", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    demo.add_parser(sub)
    bench.add_parser(sub)
    info.add_parser(sub)
    advise.add_parser(sub)
    return p


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 2
    try:
        return args.run(args) or 0
    except BrokenPipeError:        # e.g. piped into head
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
