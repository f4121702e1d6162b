"""A deliberately naive scalar implementation of docs/fixed_point.md.

Written straight from the spec with Python integers and loops over
timesteps, layers and neurons; it shares no code with the golden model
(not even the LFSR) so that the two can disagree.
"""


def asr(x: int, k: int) -> int:
    """Arithmetic shift right = floor division by 2**k (Python's >> on ints)."""
    return x >> k


def lfsr_R(seed: int, T: int, n: int):
    s = seed
    R = []
    for _t in range(T):
        row = []
        for _i in range(n):
            for _ in range(8):
                lsb = s & 1
                s = s >> 1
                if lsb:
                    s = s ^ 0xB400
            row.append(s & 0xFF)
        R.append(row)
    return R


def naive_weighted_sums(layer: dict, x: list) -> list:
    """Spec §4.1 for one layer: the exact weighted sum of every neuron, in the layer's neuron order.

    dense: ``a[j] = sum_i x[i] * W[i][j]``. conv: neuron (co, yo, xo), channel-major, sums
    ``x[ci, yo*S + ky - P, xo*S + kx - P] * W[co][ci][ky][kx]`` over positions inside the input."""
    if layer.get("kind", "dense") == "dense":
        W = layer["W"]
        return [sum(x[i] * W[i][j] for i in range(len(x))) for j in range(len(W[0]))]
    W, (C, H, Wd), S, P = layer["W"], layer["in_shape"], layer["stride"], layer["padding"]
    K = len(W[0][0])
    Ho, Wo = (H + 2 * P - K) // S + 1, (Wd + 2 * P - K) // S + 1
    out = []
    for co in range(len(W)):
        for yo in range(Ho):
            for xo in range(Wo):
                a = 0
                for ci in range(C):
                    for ky in range(K):
                        for kx in range(K):
                            y, xx = yo * S + ky - P, xo * S + kx - P
                            if 0 <= y < H and 0 <= xx < Wd:
                                a += x[ci * H * Wd + y * Wd + xx] * W[co][ci][ky][kx]
                out.append(a)
    return out


def naive_outputs(layer: dict, z: list) -> list:
    """What the next layer reads (spec §4.7): a dense layer's spikes; a conv layer's spikes summed over
    non-overlapping pool x pool windows, channel-major."""
    if layer.get("kind", "dense") == "dense" or layer["pool"] == 1:
        return z
    W, (C, H, Wd), S, P, q = layer["W"], layer["in_shape"], layer["stride"], layer["padding"], layer["pool"]
    K = len(W[0][0])
    Ho, Wo = (H + 2 * P - K) // S + 1, (Wd + 2 * P - K) // S + 1
    out = []
    for co in range(len(W)):
        for py in range(Ho // q):
            for px in range(Wo // q):
                out.append(sum(z[co * Ho * Wo + (py * q + dy) * Wo + px * q + dx]
                               for dy in range(q) for dx in range(q)))
    return out


def naive_infer(net: dict, pixels: list):
    """net: {"T", "encoding", "reset", "readout", "rate_seed", "layers": [{"W": list of rows (n_in x n_out),
    "theta", "k", "s", "m"}]}. Returns (class, scores, spikes[layer][t][j])."""
    T = net["T"]
    layers = net["layers"]
    L = len(layers)
    n = [len(naive_weighted_sums(layer, [0] * _n_inputs(layer))) for layer in layers]
    v = [[0] * n[li] for li in range(L)]
    spikes = [[[0] * n[li] for _ in range(T)] for li in range(L)]
    R = lfsr_R(net["rate_seed"], T, len(pixels)) if net["encoding"] == "rate" else None
    for t in range(T):
        if net["encoding"] == "events":
            # spec §3.3: the sample is the per-bin counts x_0[t][i] themselves (pixels: T lists)
            x = list(pixels[t])
        elif net["encoding"] == "direct":
            # spec §3.1: the top input_bits bits of each pixel
            x = [p // 2 ** (8 - net.get("input_bits", 8)) for p in pixels]
        else:
            x = [1 if pixels[i] > R[t][i] else 0 for i in range(len(pixels))]
        for li, layer in enumerate(layers):
            n_out = n[li]
            sums = naive_weighted_sums(layer, x)
            m = layer["m"]
            lo, hi = -(2 ** (m - 1)), 2 ** (m - 1) - 1
            spiking = li < L - 1 or net["readout"] == "spike_count"
            out = [0] * n_out
            for j in range(n_out):
                current = asr(sums[j], layer["s"])
                vv = v[li][j]
                if layer["k"] != 0:
                    vv = vv - asr(vv, layer["k"])
                u = vv + current
                if u > hi:
                    u = hi
                if u < lo:
                    u = lo
                if spiking:
                    z = 1 if u >= layer["theta"] else 0
                    if net["reset"] == "subtract":
                        vv = u - layer["theta"] * z
                    else:
                        vv = 0 if z else u
                    out[j] = z
                else:
                    vv = u
                v[li][j] = vv
            spikes[li][t] = out
            x = naive_outputs(layer, out)
    if net["readout"] == "spike_count":
        scores = [sum(spikes[L - 1][t][c] for t in range(T)) for c in range(len(layers[-1]["W"][0]))]
    else:
        scores = list(v[L - 1])
    best = 0
    for c in range(len(scores)):
        if scores[c] > scores[best]:
            best = c
    return best, scores, spikes


def _n_inputs(layer: dict) -> int:
    if layer.get("kind", "dense") == "dense":
        return len(layer["W"])
    C, H, W = layer["in_shape"]
    return C * H * W
