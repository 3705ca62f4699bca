#!/usr/bin/python3
"""PyTorch reference vectors for clipnn's parity tests (tests/test_torch_parity.c).

Run with Debian's interpreter, which has python3-torch (1.13):

    /usr/bin/python3 scripts/torch_reference.py [OUTDIR]

OUTDIR defaults to tests/ref beside this script. The output is committed, so
CI never needs PyTorch. Everything is seeded and every number the C side
needs (parameters, inputs, targets) is written out, so the test never has to
reproduce torch's random generator.

File format (plain text, parsed by tests/test_torch_parity.c):
    # comment                 ignored
    =key value                a string attribute
    name count                an array header, then `count` numbers separated
                              by white space (6 per line)
Float32 quantities are printed with "%.9g", which round-trips a float32
exactly; float64 ones with repr(), which round-trips a double. Non-finite
values print as inf, -inf, nan (strtod reads them).

Every computation is done twice: in float32, which is what clipnn is
compared with, and in float64 from the same float32 inputs (names ending in
"64"), the exact-math truth that lets the C test check both float32
implementations against a tolerance derived from float32 rounding.
"""
import copy
import math
import os
import sys

import torch
import torch.nn.functional as F

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

N_IN, WIDTHS, BATCH = 5, (7, 6, 3), 4
ACTS = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": F.gelu,  # exact erf form, as clipnn's CLIPNN_ACT_GELU
    "softplus": F.softplus,  # beta 1, threshold 20, as clipnn
    "relu": F.relu,
}


class RefFile:
    def __init__(self, path, comment):
        self.path = path
        self.lines = ["# " + line for line in comment.strip().splitlines()]
        self.lines.append("# written by scripts/%s, torch %s" % (os.path.basename(sys.argv[0]), torch.__version__))

    def attr(self, key, value):
        self.lines.append("=%s %s" % (key, value))

    def array(self, name, values, f64=False):
        if isinstance(values, torch.Tensor):
            values = values.detach().reshape(-1).tolist()
        elif not isinstance(values, (list, tuple)):
            values = [values]
        fmt = repr if f64 else (lambda v: "%.9g" % v)
        self.lines.append("%s %d" % (name, len(values)))
        for i in range(0, len(values), 6):
            self.lines.append(" ".join(fmt(float(v)) for v in values[i : i + 6]))

    def pair(self, name, t32, t64):
        """A float32 result and its float64 truth."""
        self.array(name, t32)
        self.array(name + "64", t64, f64=True)

    def save(self):
        with open(self.path, "w") as f:
            f.write("\n".join(self.lines) + "\n")


def make_layers(gen):
    """torch.nn.Linear layers 5-7-6-3 with torch's default initialisation."""
    layers, n = [], N_IN
    for w in WIDTHS:
        layers.append(torch.nn.Linear(n, w))
        n = w
    # Re-draw from our own generator so the numbers do not depend on the
    # global seed's history.
    with torch.no_grad():
        for lin in layers:
            bound = 1.0 / math.sqrt(lin.in_features)
            lin.weight.copy_(torch.rand(lin.weight.shape, generator=gen) * 2 * bound - bound)
            lin.bias.copy_(torch.rand(lin.bias.shape, generator=gen) * 2 * bound - bound)
    return layers


def flat_params(layers):
    """clipnn's layout: per layer W ([out][in], row-major) then b."""
    return torch.cat([t.detach().reshape(-1) for lin in layers for t in (lin.weight, lin.bias)])


def flat_grads(layers):
    return torch.cat([t.grad.reshape(-1) for lin in layers for t in (lin.weight, lin.bias)])


def params_list(layers):
    return [t for lin in layers for t in (lin.weight, lin.bias)]


def to_double(layers):
    out = []
    for lin in layers:
        d = torch.nn.Linear(lin.in_features, lin.out_features).double()
        with torch.no_grad():
            d.weight.copy_(lin.weight.double())
            d.bias.copy_(lin.bias.double())
        out.append(d)
    return out


def forward(layers, acts, x):
    a = x
    for lin, act in zip(layers, acts):
        a = ACTS[act](lin(a))
    return a


def loss_fn(kind, z, y):
    if kind == "xent":
        return F.cross_entropy(z, y.long())
    if kind == "mse":
        return F.mse_loss(z, y)
    return F.binary_cross_entropy_with_logits(z, y)


def make_targets(gen, kind, n):
    if kind == "xent":
        return torch.randint(0, WIDTHS[-1], (n,), generator=gen).float()
    if kind == "mse":
        return torch.randn(n, WIDTHS[-1], generator=gen)
    return torch.randint(0, 2, (n, WIDTHS[-1]), generator=gen).float()


def loss_grad(layers, acts, kind, x, y):
    for t in params_list(layers):
        t.grad = None
    x = x.clone().requires_grad_(True)
    z = forward(layers, acts, x)
    loss = loss_fn(kind, z, y)
    loss.backward()
    return z.detach(), loss.detach(), flat_grads(layers), x.grad.detach()


# ---------------------------------------------------------------- case (a)

GRAD_CASES = [
    # (name, activations of the three layers, loss)
    ("tanh_sigmoid_xent", ("tanh", "sigmoid", "identity"), "xent"),
    ("tanh_sigmoid_mse", ("tanh", "sigmoid", "identity"), "mse"),
    ("tanh_sigmoid_bce", ("tanh", "sigmoid", "identity"), "bce"),
    ("gelu_softplus_xent", ("gelu", "softplus", "identity"), "xent"),
    ("gelu_softplus_mse", ("gelu", "softplus", "identity"), "mse"),
    ("gelu_softplus_bce", ("gelu", "softplus", "identity"), "bce"),
    ("relu_tanh_xent", ("relu", "tanh", "identity"), "xent"),
    ("softplus_gelu_sigmoid_mse", ("softplus", "gelu", "sigmoid"), "mse"),
]


def write_header(f, acts, kind):
    f.attr("arch", "%d-%s" % (N_IN, "-".join(str(w) for w in WIDTHS)))
    f.attr("acts", ",".join(acts))
    f.attr("loss", kind)


def grad_case(outdir, seed, name, acts, kind):
    gen = torch.Generator().manual_seed(seed)
    layers = make_layers(gen)
    x = torch.randn(BATCH, N_IN, generator=gen)
    y = make_targets(gen, kind, BATCH)
    z32, l32, g32, dx32 = loss_grad(layers, acts, kind, x, y)
    z64, l64, g64, dx64 = loss_grad(to_double(layers), acts, kind, x.double(), y.double())
    f = RefFile(os.path.join(outdir, "grad_%s.txt" % name),
                "Forward/backward of a 5-7-6-3 MLP on a batch of 4, mean loss.\n"
                "params: clipnn layout (per layer W [out][in], then b).")
    write_header(f, acts, kind)
    f.array("params", flat_params(layers))
    f.array("x", x)
    f.array("y", y)
    f.pair("logits", z32, z64)
    f.pair("loss", l32, l64)
    f.pair("grad", g32, g64)
    f.pair("dx", dx32, dx64)
    f.save()


# ---------------------------------------------------------------- case (b)

STEPS, LR = 10, 0.5


def train_run(layers, acts, kind, batches, clip, momentum):
    """10 SGD steps; clip = ("norm", max_norm, p) or ("value", v). Returns
    the per-step losses, clip_grad_norm_'s returned norms (NaN for value
    clipping) and the parameters after every step."""
    params = params_list(layers)
    opt = torch.optim.SGD(params, lr=LR, momentum=momentum)
    losses, norms, thetas = [], [], []
    for x, y in batches:
        opt.zero_grad()
        loss = loss_fn(kind, forward(layers, acts, x), y)
        loss.backward()
        if clip[0] == "norm":
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, clip[1], norm_type=clip[2])))
        else:
            torch.nn.utils.clip_grad_value_(params, clip[1])
            norms.append(float("nan"))
        opt.step()
        losses.append(float(loss))
        thetas.append(flat_params(layers).clone())
    return losses, norms, torch.cat(thetas)


def unclipped_grads(layers, acts, kind, batches):
    out = []
    for x, y in batches:
        out.append(loss_grad(layers, acts, kind, x, y)[2])
    return out


def total_norm(grads, p):
    """clip_grad_norm_'s total norm: the norm of the per-tensor norms."""
    if math.isinf(p):
        return torch.max(torch.stack([g.abs().max() for g in grads]))
    return torch.norm(torch.stack([torch.norm(g, p) for g in grads]), p)


def train_cases(outdir, seed):
    acts, kind = ("tanh", "sigmoid", "identity"), "xent"
    gen = torch.Generator().manual_seed(seed)
    init = make_layers(gen)
    batches = [(torch.randn(BATCH, N_IN, generator=gen) * 2, make_targets(gen, kind, BATCH))
               for _ in range(STEPS)]
    batches64 = [(x.double(), y.double()) for x, y in batches]
    # Thresholds from the unclipped gradients at the start, so that clipping
    # is active on most steps (checked below).
    g0 = unclipped_grads(init, acts, kind, batches)
    runs = []
    for p, pname in ((2.0, "2"), (1.0, "1"), (math.inf, "inf")):
        n0 = sorted(float(torch.norm(g, p)) for g in g0)
        max_norm = float(torch.tensor(0.5 * n0[len(n0) // 2]))  # a float32 value
        runs.append(("norm%s_sgd" % pname, ("norm", max_norm, p), 0.0))
        if pname == "2":
            runs.append(("norm2_momentum", ("norm", max_norm, p), 0.9))
    absg = torch.cat(g0).abs().sort().values
    value = float(absg[int(0.7 * len(absg))])
    runs.append(("value_sgd", ("value", value), 0.0))
    runs.append(("value_momentum", ("value", value), 0.9))

    for name, clip, momentum in runs:
        l32 = copy.deepcopy(init)
        l64 = to_double(l32)
        loss32, norm32, th32 = train_run(l32, acts, kind, batches, clip, momentum)
        loss64, norm64, th64 = train_run(l64, acts, kind, batches64, clip, momentum)
        if clip[0] == "norm":
            clipped = sum(1 for n in norm32 if n > clip[1])
            assert clipped >= 7, "%s: clipping active on only %d steps" % (name, clipped)
        f = RefFile(os.path.join(outdir, "train_%s.txt" % name),
                    "10 steps of torch.optim.SGD with clip_grad_norm_ / clip_grad_value_\n"
                    "before each step, on the batches below (batch t: x[t], y[t]).\n"
                    "theta: the parameters after each step, [10][n_params].")
        write_header(f, acts, kind)
        f.attr("clip", clip[0])
        f.array("lr", LR, f64=True)
        f.array("momentum", momentum, f64=True)
        if clip[0] == "norm":
            f.array("max_norm", clip[1], f64=True)
            f.array("norm_type", clip[2], f64=True)
        else:
            f.array("clip_value", clip[1], f64=True)
        f.array("params", flat_params(init))
        f.array("x", torch.cat([b[0] for b in batches]))
        f.array("y", torch.cat([b[1] for b in batches]))
        f.pair("loss", loss32, loss64)
        f.pair("total_norm", norm32, norm64)
        f.pair("theta", th32, th64)
        f.save()


# ---------------------------------------------------------------- case (c)

# Gradient tensors shaped like the groups of a 2-3-2 MLP: W1 [3][2], b1 [3],
# W2 [2][3], b2 [2] (17 numbers), so that the C test can hold them in a
# model's gradient block.
NORM_SHAPES = ((3, 2), (3,), (2, 3), (2,))


def split(flat):
    out, k = [], 0
    for s in NORM_SHAPES:
        n = math.prod(s)
        out.append(flat[k : k + n].reshape(s).clone())
        k += n
    return out


def clip_norm(flat, max_norm, p):
    ps = [torch.nn.Parameter(torch.zeros(g.shape, dtype=g.dtype)) for g in split(flat)]
    for q, g in zip(ps, split(flat)):
        q.grad = g
    n = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=p)
    return n, torch.cat([q.grad.reshape(-1) for q in ps])


def clip_value(flat, v):
    ps = [torch.nn.Parameter(torch.zeros(g.shape, dtype=g.dtype)) for g in split(flat)]
    for q, g in zip(ps, split(flat)):
        q.grad = g
    torch.nn.utils.clip_grad_value_(ps, v)
    return torch.cat([q.grad.reshape(-1) for q in ps])


def norm_cases(outdir, seed):
    gen = torch.Generator().manual_seed(seed)
    rand = torch.randn(17, generator=gen)
    huge = rand.clone()
    huge[8] = 1e20
    inf = rand.clone()
    inf[4] = math.inf
    nan = rand.clone()
    nan[12] = math.nan
    cases = [("rand", rand), ("zero", torch.zeros(17)), ("huge", huge), ("inf", inf), ("nan", nan)]
    f = RefFile(os.path.join(outdir, "norms.txt"),
                "Total norms (clip_grad_norm_'s way: the norm of the per-tensor norms)\n"
                "and clip_grad_norm_ / clip_grad_value_ on gradients shaped like a\n"
                "2-3-2 MLP's groups (W1 [3][2], b1 [3], W2 [2][3], b2 [2]).\n"
                "CASE.clip.pP.K: the gradient after clip_grad_norm_(max_norm =\n"
                "CASE.max_norm.pP[K], norm_type P); CASE.ret.pP: its returned norms.\n"
                "Names ending in 64: the same in float64 from the same numbers.")
    f.attr("cases", ",".join(c[0] for c in cases))
    f.attr("shapes", "3x2,3,2x3,2")
    for cname, g in cases:
        g64 = g.double()
        f.array(cname + ".grad", g)
        for p, pname in ((2.0, "2"), (1.0, "1"), (math.inf, "inf")):
            t32 = total_norm(split(g), p)
            t64 = total_norm(split(g64), p)
            f.pair("%s.total.p%s" % (cname, pname), t32, t64)
            f.array("%s.groups.p%s64" % (cname, pname),
                    [float(total_norm([t], p)) for t in split(g64)], f64=True)
            # Thresholds relative to the float64 norm for the random case,
            # plain multiples of 1 for the others; "exactly the norm" is the
            # float32 norm torch computes, so clip_coef = N / (N + 1e-6) is
            # just below 1.
            base = float(t64) if cname == "rand" else 1.0
            mults = (0.25, 0.5, 2.0) if pname == "2" else (0.5,)
            maxes = [float(torch.tensor(m * base)) for m in mults]
            if math.isfinite(float(t32)) and float(t32) > 0:
                maxes.append(float(t32))
            f.array("%s.max_norm.p%s" % (cname, pname), maxes, f64=True)
            rets32, rets64 = [], []
            for k, mx in enumerate(maxes):
                r32, c32 = clip_norm(g, mx, p)
                r64, c64 = clip_norm(g64, mx, p)
                rets32.append(float(r32))
                rets64.append(float(r64))
                f.pair("%s.clip.p%s.%d" % (cname, pname, k), c32, c64)
            f.pair("%s.ret.p%s" % (cname, pname), rets32, rets64)
        f.array(cname + ".clip_value", 0.5, f64=True)
        f.array(cname + ".value", clip_value(g, 0.5))
    f.save()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "ref")
    os.makedirs(outdir, exist_ok=True)
    for i, (name, acts, kind) in enumerate(GRAD_CASES):
        grad_case(outdir, 100 + i, name, acts, kind)
    train_cases(outdir, 200)
    norm_cases(outdir, 300)


if __name__ == "__main__":
    main()
