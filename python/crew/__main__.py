"""``python -m crew demo | bench | info`` (see crew._cli)."""
import sys

if __name__ == "__main__":
    from crew._cli import main
    sys.exit(main())
