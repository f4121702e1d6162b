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


def naive_infer(net: dict, pixels: list):
    """net: {"T", "encoding", "reset", "readout", "rate_seed", "layers": [{"W": list of rows (n_in x n_out),
    "theta", "k", "s", "m"}]}. Returns (class, scores, spikes[layer][t][j])."""
    T = net["T"]
    layers = net["layers"]
    L = len(layers)
    v = [[0] * len(layer["W"][0]) for layer in layers]
    spikes = [[[0] * len(layer["W"][0]) for _ in range(T)] for layer in layers]
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
            W = layer["W"]
            n_out = len(W[0])
            m = layer["m"]
            lo, hi = -(2 ** (m - 1)), 2 ** (m - 1) - 1
            spiking = li < L - 1 or net["readout"] == "spike_count"
            out = [0] * n_out
            for j in range(n_out):
                a = 0
                for i in range(len(x)):
                    a += x[i] * W[i][j]
                current = asr(a, layer["s"])
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
            x = out
    if net["readout"] == "spike_count":
        scores = [sum(spikes[L - 1][t][c] for t in range(T)) for c in range(len(layers[-1]["W"][0]))]
    else:
        scores = list(v[L - 1])
    best = 0
    for c in range(len(scores)):
        if scores[c] > scores[best]:
            best = c
    return best, scores, spikes
