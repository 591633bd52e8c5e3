"""atheris target: QR text repair (qr/repair.py).
Run: .venv/bin/python fuzz/fuzz_qr_repair.py [libFuzzer flags],
or all targets with a time budget: .venv/bin/python fuzz/run.py --seconds 20."""

from atheris_main import main

if __name__ == "__main__":
    main("qr_repair")
