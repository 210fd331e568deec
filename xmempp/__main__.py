import sys

try:
    from xmempp.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line's modules load: a traceback said nothing more
    print("interrupted: nothing was done", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
