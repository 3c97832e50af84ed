"""Memory a variant needs, the budgets a machine offers, and the tier where it runs.

Formulas from notes/hardware-and-quants.md sections 5 and 8 (llama.cpp's KV cache, compute
buffers and device overheads, checked there against a real Gemma 3 270M on CPU and an H100):

    total   = weights + KV cache + compute buffer + host extras (+ device overhead per GPU)
    weights = file bytes − GGUF header
    KV      = Σ_layers cells(l) × n_head_kv(l) × (d_k + d_v) × 2 bytes     (f16 cache)
    compute ≈ 4 × n_ubatch × n_vocab  (logits) + activations               (flash attention)

Budgets plan ahead with totals, never the momentary free memory, so the same machine always
gets the same lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelsync.hardware.model import HardwareProfile
from modelsync.resolve.model import GIB, MIB, Estimate, Fit, ModelShape

N_UBATCH = 512
KV_BYTES = 2  # f16 cache
DEFAULT_CONTEXT = 8192
RUNTIME_HOST = 150 * MIB
TOKENIZER_BYTES_PER_TOKEN = 100
# Per-GPU runtime overhead (CUDA context, cuBLAS): measured 533–598 MiB on an H100.
DEVICE_OVERHEAD = {"cuda": 600 * MIB, "rocm": 600 * MIB, "vulkan": 600 * MIB, "metal": 512 * MIB}
# Architectures whose sliding-window layers follow a fixed pattern (every n-th layer is global).
SWA_PATTERNS = {"gemma3": 6, "gemma3n": 5, "gemma2": 2, "llama4": 4, "cohere2": 4}


def pad256(n: int) -> int:
    """KV cells are allocated in multiples of 256."""
    return -(-n // 256) * 256


def context_for(shape: ModelShape | None, wanted: int | None) -> int:
    """The context to plan for: the manifest's (else 8192), capped at the trained length."""
    context = wanted or DEFAULT_CONTEXT
    if shape is not None and shape.context_length:
        context = min(context, shape.context_length)
    return context


def kv_cache_bytes(shape: ModelShape, context: int) -> int:
    """The f16 KV cache at `context` tokens, one sequence (sliding-window layers capped)."""
    head_dim = shape.n_embd // max(shape.n_head, 1)
    d_k = shape.key_length or head_dim
    d_v = shape.value_length or head_dim
    pattern = shape.swa_pattern or SWA_PATTERNS.get(shape.architecture or "")
    if not shape.sliding_window:
        pattern = None
    full_cells = pad256(context)
    swa_cells = full_cells
    if shape.sliding_window and pattern:
        swa_cells = pad256(min(context, shape.sliding_window + N_UBATCH))
    total = 0
    for layer in range(shape.n_layers):
        heads = shape.n_head_kv
        n_kv = heads[layer] if isinstance(heads, tuple) and layer < len(heads) else heads
        if isinstance(n_kv, tuple):  # an array shorter than the layer count
            n_kv = n_kv[-1] if n_kv else shape.n_head
        is_swa = pattern is not None and (layer + 1) % pattern != 0
        cells = swa_cells if is_swa else full_cells
        total += cells * n_kv * (d_k + d_v) * KV_BYTES
    return total


def estimate(shape: ModelShape, size: int, context: int) -> Estimate:
    """What a variant of `size` bytes needs at `context` tokens."""
    weights = max(size - shape.header_size, 0)
    compute = 4 * N_UBATCH * shape.n_vocab + 16 * N_UBATCH * shape.n_embd
    host = RUNTIME_HOST + TOKENIZER_BYTES_PER_TOKEN * shape.n_vocab + 2 * context * N_UBATCH
    return Estimate(
        weights=weights,
        kv_cache=kv_cache_bytes(shape, context),
        compute=compute,
        host=host,
        context=context,
    )


@dataclass(frozen=True, slots=True)
class Budgets:
    """Usable bytes: on the GPUs together (0 without one) and in RAM."""

    gpu: int
    ram: int
    gpu_count: int
    resource: str
    """How the GPU budget is named in messages: `VRAM` or `unified memory`."""


def ram_budget(total: int) -> int:
    """RAM to plan with: the total less what the OS and other programs keep (≤ 3 GiB, ≤ 25 %)."""
    return total - min(3 * GIB, total // 4)


def budgets(machine: HardwareProfile) -> Budgets:
    """Budgets of a machine: discrete GPU = total − overhead − max(1 GiB, 5 %), per GPU."""
    ram = ram_budget(machine.ram_total)
    if machine.unified:
        # Metal's working set, else 2/3 of RAM up to 36 GB and 3/4 above (notes section 7).
        limit = machine.unified_gpu_limit
        if limit is None:
            total = machine.ram_total
            limit = total * 2 // 3 if total <= 36 * 10**9 else total * 3 // 4
        gpu = max(limit - DEVICE_OVERHEAD["metal"], 0) if machine.gpus or limit else 0
        return Budgets(gpu=min(gpu, ram), ram=ram, gpu_count=1, resource="unified memory")
    gpu = 0
    for device in machine.gpus:
        overhead = DEVICE_OVERHEAD.get(device.backend, 600 * MIB)
        gpu += max(device.vram_total - overhead - max(GIB, device.vram_total // 20), 0)
    return Budgets(gpu=gpu, ram=ram, gpu_count=len(machine.gpus), resource="VRAM")


def fit(shape: ModelShape, est: Estimate, machine: HardwareProfile) -> Fit:
    """The best tier a variant reaches: full GPU > partial (≥ 50 % of layers) > CPU > none."""
    limits = budgets(machine)
    layers = max(shape.n_layers, 1)
    layer = est.weights // (layers + 1)  # the output and embeddings count as one more layer
    kv_layer = est.kv_cache // layers
    waste = layer // 2 * max(limits.gpu_count - 1, 0)  # a split leaves half a layer per GPU
    if limits.gpu and est.device + waste <= limits.gpu and est.host <= limits.ram:
        return Fit("full", layers, layers, est.device + waste, limits.gpu, limits.resource)
    on_gpu = 0
    if limits.gpu and not machine.unified:
        room = limits.gpu - waste - est.compute - layer
        on_gpu = max(0, min(layers - 1, room // max(layer + kv_layer, 1)))
    host_need = (layers - on_gpu) * (layer + kv_layer) + est.host + est.compute
    if on_gpu:
        gpu_need = est.compute + layer + on_gpu * (layer + kv_layer) + waste
        if host_need <= limits.ram:
            tier = "partial" if 2 * on_gpu >= layers else "cpu"
            if tier == "partial":
                return Fit("partial", on_gpu, layers, gpu_need, limits.gpu, limits.resource)
            return Fit("cpu", on_gpu, layers, host_need, limits.ram, "RAM")
    if est.total <= limits.ram:
        return Fit("cpu", 0, layers, est.total, limits.ram, "RAM")
    resource = "unified memory" if machine.unified else "RAM"
    return Fit("none", 0, layers, est.total, limits.ram, resource)
