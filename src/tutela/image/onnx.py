"""ONNX Runtime session options shared by the bundled models.

Why one place: Tutela runs on one core per worker by default (the latency budget is per core
and several workers share a machine). ONNX Runtime's default is a thread per physical core,
which on a busy machine costs more in contention than it gains, so every session Tutela
creates uses the options built here.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def session_options(threads: int = 1) -> ort.SessionOptions:
    """Options for a CPU inference session: ``threads`` intra-op threads, full graph fusion."""
    if threads < 1:
        raise ValueError("threads must be at least 1")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads burn the core another worker needs; latency cost is negligible.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def cpu_session(model: Path | bytes, threads: int = 1) -> ort.InferenceSession:
    """An inference session on the CPU provider for a model file (or its bytes)."""
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(
        source, sess_options=session_options(threads), providers=["CPUExecutionProvider"]
    )
