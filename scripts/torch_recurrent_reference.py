#!/usr/bin/python3
"""PyTorch reference vectors for clipnn's recurrent layers (tests/test_recurrent.c).

Run with Debian's interpreter, which has python3-torch (1.13):

    /usr/bin/python3 scripts/torch_recurrent_reference.py [OUTDIR]

OUTDIR defaults to tests/ref beside this script; the output is committed so
the tests need no PyTorch. The file format is the one described in
scripts/torch_reference.py (its writer is reused): arrays NAME in float32
as torch computes them and NAME64, the same computation in float64 from
the same float32 inputs (the exact-math truth).

rec_CELL.txt (CELL: rnn_tanh, rnn_relu, lstm, gru): torch.nn.RNN / LSTM / GRU
with batch_first=True, for 1 and 2 layers, T = 1 and 17 steps, batch 1 and
7. Case prefix lL.tT.bB:
    params   clipnn's layout: per layer W_ih, W_hh, b_ih, b_hh, row-major
             (torch's weight_ih_lK, weight_hh_lK, bias_ih_lK, bias_hh_lK)
    x        [B][T][in];  h0, c0: [layers][B][hidden] initial states
    w_out    [B][T][hidden], w_hn, w_cn: [layers][B][hidden], the weights of
             the loss  sum(w_out * out) + sum(w_hn * h_n) + sum(w_cn * c_n)
    out      [B][T][hidden] the last layer's h_t;  h_n, c_n: final states
    loss, grad (clipnn's layout), dx, dh0, dc0
c0, w_cn, c_n, dc0 only for the LSTM.

rec_train_CELL_lL.txt: a many-to-one classifier (the recurrent layers, then
torch.nn.Linear on the last step's h, softmax cross-entropy, batch mean)
trained for 20 steps of torch.optim.SGD with clip_grad_norm_(max_norm)
before each step, a new batch every step. params: the recurrent layers in
clipnn's layout, then the Linear's weight [classes][hidden] and bias.
theta: the parameters after the steps listed in theta_steps.
"""
import copy
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import RefFile  # noqa: E402

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

IN, HIDDEN = 3, 5
CELLS = {
    "rnn_tanh": lambda n: torch.nn.RNN(IN, HIDDEN, n, nonlinearity="tanh", batch_first=True),
    "rnn_relu": lambda n: torch.nn.RNN(IN, HIDDEN, n, nonlinearity="relu", batch_first=True),
    "lstm": lambda n: torch.nn.LSTM(IN, HIDDEN, n, batch_first=True),
    "gru": lambda n: torch.nn.GRU(IN, HIDDEN, n, batch_first=True),
}


def tensors(rnn):
    """clipnn's order: per layer W_ih, W_hh, b_ih, b_hh."""
    out = []
    for k in range(rnn.num_layers):
        for name in ("weight_ih_l%d", "weight_hh_l%d", "bias_ih_l%d", "bias_hh_l%d"):
            out.append(getattr(rnn, name % k))
    return out


def make_rnn(cell, layers, gen):
    """torch's default initialisation U(+-1/sqrt(hidden)), drawn from our own
    generator so the numbers do not depend on the global seed's history."""
    rnn = CELLS[cell](layers)
    bound = 1.0 / math.sqrt(HIDDEN)
    with torch.no_grad():
        for t in tensors(rnn):
            t.copy_(torch.rand(t.shape, generator=gen) * 2 * bound - bound)
    return rnn


def flat(ts):
    return torch.cat([t.detach().reshape(-1) for t in ts])


def flat_grad(ts):
    return torch.cat([t.grad.reshape(-1) for t in ts])


# ------------------------------------------------------- forward/backward


def run(rnn, lstm, x, h0, c0, w_out, w_hn, w_cn):
    """Outputs, loss and gradients of the weighted-sum loss."""
    for t in tensors(rnn):
        t.grad = None
    x, h0 = x.clone().requires_grad_(True), h0.clone().requires_grad_(True)
    if lstm:
        c0 = c0.clone().requires_grad_(True)
        out, (h_n, c_n) = rnn(x, (h0, c0))
        loss = (w_out * out).sum() + (w_hn * h_n).sum() + (w_cn * c_n).sum()
    else:
        out, h_n = rnn(x, h0)
        c_n = None
        loss = (w_out * out).sum() + (w_hn * h_n).sum()
    loss.backward()
    return {
        "out": out.detach(), "h_n": h_n.detach(), "c_n": None if c_n is None else c_n.detach(),
        "loss": loss.detach(), "grad": flat_grad(tensors(rnn)), "dx": x.grad, "dh0": h0.grad,
        "dc0": c0.grad if lstm else None,
    }


def parity_case(f, cell, layers, T, B, seed):
    gen = torch.Generator().manual_seed(seed)
    lstm = cell == "lstm"
    rnn = make_rnn(cell, layers, gen)
    x = torch.randn(B, T, IN, generator=gen)
    h0 = 0.5 * torch.randn(layers, B, HIDDEN, generator=gen)
    c0 = 0.5 * torch.randn(layers, B, HIDDEN, generator=gen)
    w_out = torch.randn(B, T, HIDDEN, generator=gen)
    w_hn = torch.randn(layers, B, HIDDEN, generator=gen)
    w_cn = torch.randn(layers, B, HIDDEN, generator=gen)
    r32 = run(rnn, lstm, x, h0, c0, w_out, w_hn, w_cn)
    r64 = run(copy.deepcopy(rnn).double(), lstm, x.double(), h0.double(), c0.double(), w_out.double(),
              w_hn.double(), w_cn.double())
    p = "l%d.t%d.b%d." % (layers, T, B)
    f.array(p + "params", flat(tensors(rnn)))
    f.array(p + "x", x)
    f.array(p + "h0", h0)
    f.array(p + "w_out", w_out)
    f.array(p + "w_hn", w_hn)
    if lstm:
        f.array(p + "c0", c0)
        f.array(p + "w_cn", w_cn)
    names = ("out", "h_n", "loss", "grad", "dx", "dh0") + (("c_n", "dc0") if lstm else ())
    for name in names:
        f.pair(p + name, r32[name], r64[name])


def parity_file(outdir, cell, seed):
    f = RefFile(os.path.join(outdir, "rec_%s.txt" % cell),
                "torch.nn.%s(%d, %d, num_layers, batch_first=True)%s: forward and the\n"
                "gradients of sum(w_out * out) + sum(w_hn * h_n)%s, for case prefixes\n"
                "lL.tT.bB (layers, steps, batch). See scripts/torch_recurrent_reference.py."
                % ({"lstm": "LSTM", "gru": "GRU"}.get(cell, "RNN"), IN, HIDDEN,
                   ", nonlinearity=%s" % cell[4:] if cell.startswith("rnn") else "",
                   " + sum(w_cn * c_n)" if cell == "lstm" else ""))
    f.attr("cell", cell)
    f.attr("in", IN)
    f.attr("hidden", HIDDEN)
    k = 0
    for layers in (1, 2):
        for T in (1, 17):
            for B in (1, 7):
                parity_case(f, cell, layers, T, B, seed + k)
                k += 1
    f.save()


# --------------------------------------------------- 20 clipped SGD steps

CLASSES, TRAIN_B, TRAIN_T, STEPS, LR = 3, 5, 6, 20, 0.5
THETA_STEPS = (1, 2, 5, 10, 20)


class ManyToOne(torch.nn.Module):
    def __init__(self, cell, layers, gen):
        super().__init__()
        self.rnn = make_rnn(cell, layers, gen)
        self.lin = torch.nn.Linear(HIDDEN, CLASSES)
        bound = 1.0 / math.sqrt(HIDDEN)
        with torch.no_grad():
            for t in (self.lin.weight, self.lin.bias):
                t.copy_(torch.rand(t.shape, generator=gen) * 2 * bound - bound)

    def ordered(self):
        return tensors(self.rnn) + [self.lin.weight, self.lin.bias]

    def forward(self, x):
        out = self.rnn(x)[0]
        return self.lin(out[:, -1])


def train_run(model, batches, max_norm):
    params = model.ordered()
    opt = torch.optim.SGD(params, lr=LR)
    losses, norms, thetas = [], [], []
    for step, (x, y) in enumerate(batches, 1):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm)))
        opt.step()
        losses.append(float(loss))
        if step in THETA_STEPS:
            thetas.append(flat(params).clone())
    return losses, norms, torch.cat(thetas)


def unclipped_norms(model, batches):
    out = []
    for x, y in batches:
        for t in model.ordered():
            t.grad = None
        F.cross_entropy(model(x), y).backward()
        out.append(float(torch.norm(flat_grad(model.ordered()))))
    return out


def train_file(outdir, cell, layers, seed):
    gen = torch.Generator().manual_seed(seed)
    init = ManyToOne(cell, layers, gen)
    batches = [(torch.randn(TRAIN_B, TRAIN_T, IN, generator=gen),
                torch.randint(0, CLASSES, (TRAIN_B,), generator=gen)) for _ in range(STEPS)]
    n0 = sorted(unclipped_norms(init, batches))
    max_norm = float(torch.tensor(0.5 * n0[len(n0) // 2]))  # a float32 value
    m32 = copy.deepcopy(init)
    loss32, norm32, th32 = train_run(m32, batches, max_norm)
    m64 = copy.deepcopy(init).double()
    loss64, norm64, th64 = train_run(m64, [(x.double(), y) for x, y in batches], max_norm)
    clipped = sum(1 for n in norm32 if n > max_norm)
    assert clipped >= 15, "%s: clipping active on only %d steps" % (cell, clipped)
    f = RefFile(os.path.join(outdir, "rec_train_%s_l%d.txt" % (cell, layers)),
                "20 steps of torch.optim.SGD with clip_grad_norm_ on a many-to-one classifier:\n"
                "%d %s layer(s), Linear on the last step's h, cross-entropy (batch mean).\n"
                "Batch t: x[t] [B][T][in], y[t] [B]. theta: parameters after theta_steps.\n"
                "See scripts/torch_recurrent_reference.py." % (layers, cell))
    for key, value in (("cell", cell), ("in", IN), ("hidden", HIDDEN), ("layers", layers),
                       ("classes", CLASSES), ("batch", TRAIN_B), ("steps", TRAIN_T), ("updates", STEPS)):
        f.attr(key, value)
    f.array("lr", LR, f64=True)
    f.array("max_norm", max_norm, f64=True)
    f.array("theta_steps", list(THETA_STEPS), f64=True)
    f.array("params", flat(init.ordered()))
    f.array("x", torch.cat([b[0].reshape(-1) for b in batches]))
    f.array("y", torch.cat([b[1].float() for b in batches]))
    f.pair("loss", loss32, loss64)
    f.pair("total_norm", norm32, norm64)
    f.pair("theta", th32, th64)
    f.save()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "ref")
    os.makedirs(outdir, exist_ok=True)
    for i, cell in enumerate(CELLS):
        parity_file(outdir, cell, 400 + 10 * i)
    for i, (cell, layers) in enumerate((("rnn_tanh", 1), ("rnn_relu", 1), ("lstm", 2), ("gru", 2))):
        train_file(outdir, cell, layers, 500 + i)


if __name__ == "__main__":
    main()
