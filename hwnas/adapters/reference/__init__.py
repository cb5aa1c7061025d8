"""The phones' reference workload: ``conformer_xs_chunk.tflite`` in this
folder, timed by ``benchmark_model`` before and after every measurement on a
phone (``hwnas.adapters.android``). It ships as a file rather than being
exported on the phone's host because every phone must time the same bytes:
another converter version would give another graph.

    python -m hwnas.adapters.reference      # export it again (needs hwnas[tflite])
"""
