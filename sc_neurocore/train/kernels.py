"""The torch.autograd.Function pieces of the QAT emulation (exact integer forward, surrogate backward)."""

from __future__ import annotations

import torch


#: Below this many columns a product ``a @ b`` is evaluated as ``(b.t() @ a.t()).t()`` (:func:`_mm`).
_NARROW = 16


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b``, as ``(b.t() @ a.t()).t()`` when ``b`` has fewer than :data:`_NARROW` columns: with one thread
    on this machine (AMD EPYC, torch's MKL) a product with 10 columns ran 3-5x slower than the same product
    transposed (512x128 spikes times the 128x10 readout weights: 211 vs 48 us, and the weight gradient
    128x512 by 512x10: 225 vs 40 us, about a tenth of a T=4 training step), from 16 columns on the two forms
    cost the same. Every product of the forward pass is exact (integers below the mantissa), so its values do
    not depend on the form; gradients may differ in the last bit (another summation order)."""
    if b.shape[-1] < _NARROW:
        return (b.t() @ a.t()).t().contiguous()  # contiguous: what follows sees the layout of ``a @ b``
    return a @ b


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)  # half to even, like numpy.rint (spec §7)

    @staticmethod
    def backward(ctx, g):
        return g


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, g):
        return g


class _ExactCurrent(torch.autograd.Function):
    """``I = clamp(floor((x @ W) / 2^s), -2^m, 2^m)`` computed exactly; straight-through backward.

    The clamp to ``±2^m`` never changes the saturated sum ``clamp(v' + I)`` (|v'| < 2^(m-1)),
    it only keeps ``I`` exactly representable in the float dtype of the membrane.
    """

    @staticmethod
    def forward(ctx, x, w, shift, lim, exact64, out_dtype):
        if exact64:
            a = x.to(torch.float64) @ w.to(torch.float64)
        else:
            a = x @ w
        cur = torch.clamp(torch.floor(a * (1.0 / (1 << shift))), -lim, lim).to(out_dtype)
        ctx.save_for_backward(x, w)
        ctx.scale = 1.0 / (1 << shift)
        return cur

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        g = g.to(w.dtype) * ctx.scale
        gx = g @ w.t() if ctx.needs_input_grad[0] else None
        gw = x.to(g.dtype).t() @ g if ctx.needs_input_grad[1] else None
        return gx, gw, None, None, None, None


class _Spike(torch.autograd.Function):
    """Heaviside ``u >= theta`` with the fast-sigmoid surrogate ``1/(1 + slope*|u-theta|/theta)^2 / theta``."""

    @staticmethod
    def forward(ctx, u, theta, slope):
        ctx.save_for_backward(u)
        ctx.theta, ctx.slope = theta, slope
        return (u >= theta).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        x = (u - ctx.theta) * (ctx.slope / ctx.theta)
        return g / (ctx.theta * (1.0 + x.abs()) ** 2), None, None


class _QuantDense(torch.autograd.Function):
    """Weight quantisation and the exact current of one layer in one node (the fast training path).

    Forward: ``q = clamp(rint(w * alpha), ±wmax)`` (spec §7), ``I = clamp(floor((x @ q) / 2^s), ±2^m)``
    (§4.1-4.2), bit for bit what :meth:`SpikingMLP.int_weight` and :class:`_ExactCurrent` compute.
    The weighted sum runs in float32 whenever that is exact: always for 0/1 inputs (``exact64``
    False), and for a direct-encoded layer 1 when this batch's bound ``max_b sum_i x_bi * max|q|``
    is below 2^24 (every partial sum of the matmul is then an exactly representable integer, in
    any summation order); otherwise in float64. Backward: straight-through round and shift, zero
    gradient where the clamp to ``±wmax`` is active (the gradients of the plain-autograd path).
    """

    @staticmethod
    def forward(ctx, x, w, alpha, wmax, shift, lim, exact64, out_dtype, nonneg):
        r = torch.round(w * alpha)
        lo, hi = torch.aminmax(r)
        rmax = max(-float(lo), float(hi))
        keep = None
        if rmax > wmax:  # 1.0 where |r| <= wmax, else 0.0 (r holds integers; float ops, no slow boolean tensor)
            keep = torch.rsub(r.abs(), wmax + 1.0).clamp_(0.0, 1.0)
            r.clamp_(-wmax, wmax)
            rmax = float(wmax)
        q = r
        scale = 1.0 / (1 << shift)
        if exact64 and float((x if nonneg else x.abs()).sum(1).max()) * rmax >= (1 << 24):
            a = _mm(x.to(torch.float64), q.to(torch.float64))
        else:
            a = _mm(x, q)
        cur = a.mul_(scale).floor_().clamp_(-lim, lim).to(out_dtype)
        ctx.save_for_backward(x, q, keep)
        ctx.gain = (scale, alpha)
        return cur

    @staticmethod
    def backward(ctx, g):
        x, q, keep = ctx.saved_tensors
        scale, alpha = ctx.gain
        g = g.to(q.dtype)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = (g * scale) @ q.t()
        if ctx.needs_input_grad[1]:
            gw = _mm(x.t(), g).mul_(scale * alpha)
            if keep is not None:
                gw.mul_(keep)
        return gx, gw, None, None, None, None, None, None, None


def _direct_conv_only(device_type: str):
    """The backend flags under which torch's ``conv2d`` on ``device_type`` sums products directly (no transform).

    CPU: torch takes oneDNN, which sums directly; where oneDNN is off or missing it took NNPACK, a Winograd
    transform whose float32 rounding was measured 3.7e-4 off the integers (64 x 16 x 14 x 14 spikes, 5x5 kernels),
    so NNPACK is switched off and the fallback is torch's im2col and matrix product. CUDA: cuDNN chooses its
    algorithm by heuristics, and its Winograd and FFT algorithms transform in floating point too (nothing in
    torch's API excludes them, ``cudnn.deterministic`` included), so cuDNN is switched off for the currents and
    torch's im2col and cuBLAS product run instead (exact: the trainer turns TF32 off on CUDA). Not measured on a
    GPU (none was lent to the sessions that wrote this); the backward's convolutions keep cuDNN."""
    if device_type == "cuda":
        return torch.backends.cudnn.flags(enabled=False)
    return torch.backends.nnpack.flags(enabled=False)


def exact_conv2d(x: torch.Tensor, w: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
    """``conv2d(x, w)`` summed product by product, so that integer operands give exact integer sums (every partial
    sum below the mantissa: ``ConvDesign.exact64`` picks float64 where float32 would not hold them), on any device
    (:func:`_direct_conv_only`: a transform's rounding, which a floor turns into wrong currents, is kept out)."""
    with _direct_conv_only(x.device.type):
        return torch.nn.functional.conv2d(x, w, stride=stride, padding=padding)


class _QuantConv(torch.autograd.Function):
    """Kernel quantisation and the exact current of one conv layer in one node (the conv kind's fast path).

    Forward: ``q = clamp(rint(w * alpha), ±wmax)``, ``I = clamp(floor(conv2d(x, q) / 2^s), ±2^m)``, in float64
    when ``exact64`` (the integers of :class:`~sc_neurocore.train.model.ConvQAT`'s plain-autograd path, bit for
    bit). Backward: the gradients that autograd takes through that path, bit for bit — straight-through round and
    floor, zero where either clamp is active, the convolution's own ``convolution_backward`` — without its
    chain of elementwise nodes over the ``(T*B, C, H, W)`` currents (an unfused conv layer spent about a tenth of
    a training step on the products, floors, clamp masks and their gradients; here the forward works in place
    and the backward is one multiply unless a clamp was active)."""

    @staticmethod
    def forward(ctx, x, w, alpha, wmax, shift, lim, exact64, out_dtype, stride, padding):
        r = torch.round(w * alpha)
        keep = None
        lo, hi = torch.aminmax(r)
        if max(-float(lo), float(hi)) > wmax:  # the round-trip of SpikingMLP.int_weight: 1 where |r| <= wmax
            keep = torch.rsub(r.abs(), wmax + 1.0).clamp_(0.0, 1.0)
            r.clamp_(-wmax, wmax)
        wdt = x.dtype
        xs, qs = (x.to(torch.float64), r.to(torch.float64)) if exact64 else (x, r)
        a = exact_conv2d(xs, qs, stride, padding)
        cur = a.mul_(1.0 / (1 << shift)).floor_()
        lo, hi = torch.aminmax(cur)
        cmask = None
        if float(lo) < -lim or float(hi) > lim:  # 1 where -lim <= cur <= lim (autograd's clamp gradient)
            cmask = torch.rsub(cur.abs(), lim + 1.0).clamp_(0.0, 1.0)
            cur.clamp_(-lim, lim)
        ctx.save_for_backward(xs, qs, keep, cmask)
        ctx.cfg = (1.0 / (1 << shift), alpha, stride, padding, wdt, w.dtype)
        return cur.to(out_dtype)  # float64 membranes (m > 23) get the float64 currents whole

    @staticmethod
    def backward(ctx, g):
        xs, qs, keep, cmask = ctx.saved_tensors
        scale, alpha, stride, padding, xdt, wdt = ctx.cfg
        g = g.to(qs.dtype)
        if cmask is not None:
            g = g * cmask
        # The shift's scale 2^-s is applied to the two (smaller) results, not to g: both products are linear in
        # g and scaling by a power of two is exact, so the bits are the same (short of subnormal gradients)
        # and one pass over the (T*B, C_out, H, W) gradient is saved.
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = torch.nn.grad.conv2d_input(xs.shape, qs, g, stride=stride, padding=padding).to(xdt).mul_(scale)
        if ctx.needs_input_grad[1]:
            gw = torch.nn.grad.conv2d_weight(xs, qs.shape, g, stride=stride, padding=padding).to(wdt)
            if keep is not None:
                gw.mul_(keep)
            gw.mul_(scale * alpha)
        return gx, gw, None, None, None, None, None, None, None, None


class _SumPool(torch.autograd.Function):
    """Sum over non-overlapping ``q x q`` windows of ``(N, C, H, W)`` (spec §4.7); backward, every position of a
    window gets that window's gradient. The same values as ``avg_pool2d(z, q) * q^2`` and its gradient (sums of
    0/1 spikes are exact and the scaling by ``q^2`` is a power of two for q = 2), at a fraction of its cost.

    Both directions are separable, and are done rows first because a row of a window is ``W`` contiguous
    values: forward, the ``q`` rows of each window band are added (long contiguous runs), then the ``q``
    neighbours within each row (strided, but on ``1/q`` of the data); backward, each gradient is repeated
    ``q`` times along a row, and that row ``q`` times (a broadcast copy with contiguous runs of ``W``). Strided
    views of the whole map (``z[:, :, dy::q, dx::q]``, what this did before) run inner loops of ``W/q``
    elements at stride ``q``: one thread, 512 x 16 x 28 x 28 spikes, 4.0 -> 1.7 ms forward and 6.8 -> 3.8 ms
    backward. The first two rows (and columns) of a window are added into a new tensor, not copied and then added
    to: on an AMD EPYC host that halved the forward again (11.8 -> 4.7 ms for the same spikes)."""

    @staticmethod
    def forward(ctx, z, q):
        ctx.q = q
        n, c, h, w = z.shape
        if q == 1:
            return z.clone()
        rows = z.reshape(n, c, h // q, q, w)
        r = torch.add(rows[:, :, :, 0], rows[:, :, :, 1])
        for dy in range(2, q):
            r += rows[:, :, :, dy]
        cols = r.view(n, c, h // q, w // q, q)
        x = torch.add(cols[..., 0], cols[..., 1])
        for dx in range(2, q):
            x += cols[..., dx]
        return x

    @staticmethod
    def backward(ctx, g):
        q = ctx.q
        n, c, h, w = g.shape
        row = g.unsqueeze(-1).expand(n, c, h, w, q).reshape(n, c, h, 1, w * q)
        return row.expand(n, c, h, q, w * q).reshape(n, c, h * q, w * q), None


def _mantissa_bits(dtype: torch.dtype) -> int:
    return 24 if dtype == torch.float32 else 53


#: Most values per array that :meth:`_LIFLayer.backward` works on at once (8 MiB of float32).
_CHUNK_ELEMENTS = 1 << 21


def _chunks(T: int, step_elements: int) -> list[tuple[int, int]]:
    """The ``(t0, t1)`` step ranges, last first, that :meth:`_LIFLayer.backward` works through: as many steps at
    once as fit :data:`_CHUNK_ELEMENTS` values per array (at least one). A conv layer's ``(T, B, n)`` arrays are
    25 MB and fall out of the cache between passes: one pass over all of them cost 7x a pass over one step's
    (4.7 vs 0.66 ms, T=4, 128 x 12 544 neurons). Small layers (a 128-neuron layer at batch 128) take all T steps
    at once, as before: per-step passes there would only add tensor calls."""
    step = max(1, min(T, _CHUNK_ELEMENTS // max(1, step_elements)))
    return [(max(0, t1 - step), t1) for t1 in range(T, 0, -step)]


def _saturates(pre: torch.Tensor, mmin: float, mmax: float) -> bool:
    """Whether any of the ``(T, B, n)`` pre-clamp membranes lies outside ``[mmin, mmax]``, a cache-sized chunk of
    steps at a time (:func:`_chunks`)."""
    for t0, t1 in _chunks(pre.shape[0], pre[0].numel()):
        lo, hi = torch.aminmax(pre[t0:t1])
        if bool(lo < mmin) or bool(hi > mmax):
            return True
    return False


class _LIFLayer(torch.autograd.Function):
    """The whole LIF recurrence of one layer over T steps (spec §4 steps 3-6) with a hand-written BPTT.

    Forward equals the integer spec exactly; backward is the same surrogate-gradient BPTT as the
    plain-autograd loop :meth:`SpikingMLP._lif_reference` (straight-through leak, clamp gradient,
    fast-sigmoid surrogate, detached reset) without building a graph of ~10 nodes per step.
    Input: the currents (B, n) (constant over time) or (T, B, n). Output (T, B, n): spikes, or
    the membrane increments ``v_t - v_{t-1}`` of a non-spiking layer.

    Speed (the per-step work is a handful of small tensor ops, so their number is what counts):
    with integer states, the leak-and-integrate ``v - floor(v / 2^k) + I`` is ``ceil(I + (1 - 2^-k) v)``
    (one fused multiply-add and a ceil, exact while the operands fit the mantissa), the spike
    ``u >= theta`` is written as 0.0 / 1.0 straight into the float output (one pass, no boolean tensor), and the
    backward evaluates the surrogate for as many steps at once as fit the cache (:func:`_chunks`: all T for
    small layers, one step at a time for a conv layer's); a constant current with ``T max|I|`` inside the
    membrane range skips the clamps; with subtract reset and no saturation
    the backward recurrence is linear, ``g_t = A_t + lambda g_{t+1}``, and for a constant current
    its sum over ``t`` is one weighted sum of the ``A_t``.
    """

    @staticmethod
    def forward(ctx, cur, T, constant, theta, leak, mmin, mmax, spiking, subtract, slope):
        B, n = cur.shape[-2], cur.shape[-1]
        dt = cur.dtype
        pre = torch.empty(T, B, n, dtype=dt, device=cur.device)
        out = torch.empty(T, B, n, dtype=dt, device=cur.device)
        lam = 1.0 - 1.0 / (1 << leak)
        mbits = int(mmax + 1).bit_length()  # membrane width m: |I| <= 2^m, |v| < 2^(m-1)
        fma = leak > 0 and mbits + 1 + leak <= _mantissa_bits(dt)
        inv = 1.0 / (1 << leak)
        # |v_t| <= t max|I| (the leak and both resets never grow |v|), so for a constant current with
        # T max|I| inside the membrane range no step can clamp: one pass of (B, n) saves T clamps here and the
        # backward's search for clamped values (all of a conv layer's first steps, in practice).
        in_range = False
        if constant and spiking:
            lo, hi = torch.aminmax(cur)
            in_range = T * max(-float(lo), float(hi), 0.0) <= min(mmax, -mmin)
        v = None
        for t in range(T):
            I = cur if constant else cur[t]
            p = pre[t]
            if v is None:                       # v_0 = 0: nothing leaks
                p.copy_(I)
            elif leak == 0:
                torch.add(I, v, out=p)
            elif fma:                           # v - floor(v/2^k) + I == ceil(I + (1-2^-k) v) for integers
                torch.add(I, v, alpha=lam, out=p).ceil_()
            else:
                torch.sub(v, torch.floor(v * inv), out=p).add_(I)
            if in_range:  # u = p (pre is kept for the backward: v is a new tensor)
                z = torch.ge(p, theta, out=out[t])
                v = torch.sub(p, z, alpha=theta) if subtract else p * (1.0 - z)
                continue
            u = torch.clamp(p, mmin, mmax)
            if spiking:
                z = torch.ge(u, theta, out=out[t])  # 0.0 / 1.0 straight into the float output, one pass
                v = u.sub_(z, alpha=theta) if subtract else u.mul_(1.0 - z)
            else:
                if v is None:
                    out[t].copy_(u)
                else:
                    torch.sub(u, v, out=out[t])
                v = u
        ctx.save_for_backward(pre, out if (spiking and not subtract) else None)
        ctx.cfg = (T, constant, theta, leak, mmin, mmax, spiking, subtract, slope)
        ctx.in_range = in_range
        return out

    @staticmethod
    def backward(ctx, gout):
        pre, zs = ctx.saved_tensors
        T, constant, theta, leak, mmin, mmax, spiking, subtract, slope = ctx.cfg
        lam = 1.0 - 1.0 / (1 << leak) if leak else 1.0
        gout = gout.to(pre.dtype)
        mask = None  # the clamp's gradient: 1 where mmin <= pre <= mmax, else 0 (pre holds integers)
        if not ctx.in_range and _saturates(pre, mmin, mmax):
            mask = torch.rsub((pre - 0.5 * (mmin + mmax)).abs_(), 0.5 * (mmax - mmin) + 1.0).clamp_(0.0, 1.0)
        if not spiking:
            # g_t = mask_t (gout_t + gv_{t+1}), gv_t = lam g_t - gout_t
            G = torch.empty_like(gout)
            gv = None
            for t in range(T - 1, -1, -1):
                gu = gout[t] if gv is None else gout[t] + gv
                gp = torch.mul(gu, mask[t], out=G[t]) if mask is not None else G[t].copy_(gu)
                gv = torch.sub(gp * lam if leak else gp, gout[t])
            gcur = G.sum(0) if constant else G
            return gcur, None, None, None, None, None, None, None, None, None
        # surrogate: 1 / (theta (1 + k |u - theta|)^2) = coef / y^2 with y = |u - theta| + 1/k, coef = 1/(theta k^2);
        # u = clamp(pre) only differs from pre where mask = 0, so y uses pre
        k = slope / theta
        coef = 1.0 / (theta * k * k)
        # g_t = mask_t (A_t + lam r_t g_{t+1}) with r = 1 (subtract reset) or 1 - z_t (zero reset): D_t = lam mask_t r_t
        D = None
        if not subtract:
            D = torch.rsub(zs, 1.0).mul_(lam)
            if mask is not None:
                D.mul_(mask)
        elif mask is not None:
            D = mask * lam  # not in place: A_t is masked below
        closed = D is None and constant
        if closed:
            # sum_t g_t = sum_s A_s (1 + lam + ... + lam^s): one weighted sum over the steps
            c_list = [coef * ((1.0 - lam ** (s + 1)) / (1.0 - lam) if lam != 1.0 else s + 1.0) for s in range(T)]
            c = torch.tensor(c_list, dtype=pre.dtype, device=pre.device)
        G = None if constant else torch.empty_like(pre)  # the result, in place, from the last step back
        acc = nxt = None
        for t0, t1 in _chunks(T, pre[0].numel()):  # cache-sized chunks of steps, the last first
            y = torch.sub(pre[t0:t1], theta).abs_().add_(1.0 / k)
            A = torch.div(gout[t0:t1], y, out=None if constant else G[t0:t1]).div_(y)  # gout_t surrogate_t / coef
            if mask is not None:
                A.mul_(mask[t0:t1])
            if closed:
                if t1 - t0 == 1:  # one step: a scaled add (a 1 x 1 by 1 x n matrix product took 3x as long)
                    acc = torch.mul(A[0], c_list[t0]) if acc is None else acc.add_(A[0], alpha=c_list[t0])
                    continue
                part = torch.tensordot(c[t0:t1], A, dims=1)
                acc = part if acc is None else acc.add_(part)
                continue
            for t in range(t1 - 1, t0 - 1, -1):
                if nxt is not None:
                    if D is None:
                        A[t - t0].add_(nxt, alpha=lam)
                    else:
                        A[t - t0].addcmul_(D[t], nxt)
                    if not constant and t == t1 - 1:
                        nxt.mul_(coef)  # the previous chunk's first step, final once this one has used it
                nxt = A[t - t0]
            if constant:
                part = A.sum(0)
                acc = part if acc is None else acc.add_(part)
            else:
                A[1:].mul_(coef)  # final; A[0] is scaled after the next chunk's last step has read it
        if closed:
            gcur = acc
        elif constant:
            gcur = acc.mul_(coef)
        else:
            gcur = G
            G[0].mul_(coef)
        return gcur, None, None, None, None, None, None, None, None, None


#: Most entries (steps x distinct currents) of one table of :func:`lif_table` (8 MiB of float32): with 16-bit membranes
#: (currents in [-2^16, 2^16]) every T up to 15.
_TABLE_ENTRIES = 1 << 21

#: :func:`lif_table`'s tables, by layer configuration (a training run uses one or two).
_TABLES: dict = {}


def lif_table(T: int, theta: float, leak: int, mmin: float, mmax: float, subtract: bool, slope: float, lim: float,
              dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(Z, K)``, both ``(T, 2 lim + 1)``: the spikes ``Z[t, I + lim]`` of a spiking LIF layer whose current is the
    integer ``I`` at every step, and the gradient ``K[t, I + lim]`` of ``I`` per unit gradient of spike ``t``, for
    every ``I`` in ``[-lim, lim]`` (the range the currents are clamped to); None when that is more than
    :data:`_TABLE_ENTRIES` entries. A constant current's whole trajectory is a function of that one integer, so
    :class:`_LIFTable` can look it up instead of running the recurrence. The table is the recurrence itself, run
    once per configuration: :class:`_LIFLayer`'s forward on all the currents at once (so ``Z`` holds exactly its
    spikes) and its backward once per step with the gradient 1 on that step's spikes (so ``K`` holds its
    gradients: they are linear in the output gradient)."""
    R = 2 * int(lim) + 1
    if T * R > _TABLE_ENTRIES:
        return None
    key = (T, theta, leak, mmin, mmax, subtract, slope, lim, dtype, device)
    table = _TABLES.get(key)
    if table is None:
        with torch.inference_mode(False), torch.enable_grad():
            cur = torch.arange(-int(lim), int(lim) + 1, dtype=dtype, device=device).reshape(1, R).requires_grad_()
            out = _LIFLayer.apply(cur, T, True, theta, leak, mmin, mmax, True, subtract, slope)
            K = torch.empty(T, R, dtype=dtype, device=device)
            for t in range(T):
                onehot = torch.zeros_like(out)
                onehot[t] = 1.0
                (g,) = torch.autograd.grad(out, cur, onehot, retain_graph=t < T - 1)
                K[t] = g[0]
        table = _TABLES[key] = (out.detach()[:, 0].contiguous(), K)
    return table


class _LIFTable(torch.autograd.Function):
    """A spiking LIF layer with a constant current (layer 1 of a direct-encoded network), looked up in
    :func:`lif_table`'s ``(Z, K)``: forward ``out[t] = Z[t, I + lim]``, bit for bit :class:`_LIFLayer`'s spikes;
    backward ``dL/dI = sum_t gout[t] K[t, I + lim]``, its gradients up to float rounding (another summation order).

    One gather per direction instead of a handful of passes per step: one thread, T=4, a conv layer of 128 x 12 544
    neurons took 3.8 ms forward and 6.3 ms backward (about 13 and 15 ms through the recurrence), a 128 x 128 dense
    layer about 30 and 45 us (about 180 and 330 us); nothing of size ``(T, B, n)`` is kept for the backward."""

    @staticmethod
    def forward(ctx, cur, Z, K, lim):
        B, n = cur.shape
        idx = torch.add(cur.reshape(-1), lim).to(torch.int32)  # cur holds integers in [-lim, lim]
        ctx.save_for_backward(idx, K)
        out = torch.empty(Z.shape[0], B * n, dtype=Z.dtype, device=Z.device)
        for t in range(Z.shape[0]):  # one row at a time: one gather over the 2-D table ran 2x slower
            torch.index_select(Z[t], 0, idx, out=out[t])
        return out.view(Z.shape[0], B, n)

    @staticmethod
    def backward(ctx, gout):
        idx, K = ctx.saved_tensors
        g = gout.to(K.dtype).reshape(K.shape[0], -1)
        acc = None
        for t in range(K.shape[0]):
            k = torch.index_select(K[t], 0, idx)
            acc = k.mul_(g[t]) if acc is None else acc.addcmul_(k, g[t])
        return acc.view(gout.shape[1:]), None, None, None
