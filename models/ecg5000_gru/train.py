#!/usr/bin/env python3
"""Train the GRU variant of the recurrent ECG5000 classifier.

The model, data split and export live in ../ecg5000_lstm/train.py (one script for both
cells, so the two recurrent models differ only in the cell); this runs it with
`--cell gru`, writing into this folder.

Usage: python3 models/ecg5000_gru/train.py [--epochs N] [--out DIR]
"""

import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--cell", "gru", *sys.argv[1:]]
    runpy.run_path(os.path.join(os.path.dirname(HERE), "ecg5000_lstm", "train.py"), run_name="__main__")
