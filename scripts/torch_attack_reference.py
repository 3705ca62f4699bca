#!/usr/bin/python3
"""PyTorch reference for clipnn's attacks (tests/test_attack.c).

    /usr/bin/python3 scripts/torch_attack_reference.py [OUTDIR]

Builds a fixed small MLP (20 -> 16 relu -> 12 tanh -> 5), takes 8 inputs in
[0, 1] labelled with the model's own predictions (so every one is eligible
for an untargeted attack), and runs FGSM and PGD without random start at a
fixed step, with the update and projection written the way torchattacks
writes them:
    FGSM       x' = clamp(x + eps sign(grad), 0, 1)
    PGD-Linf   x' = clamp(x + clamp(x_t + a sign(grad) - x, -eps, eps), 0, 1)
    PGD-L2     x_t + a grad / (||grad|| + 1e-10), delta scaled by
               min(eps / ||delta||, 1), then clamp to [0, 1]
where grad is the gradient of the loss the attack climbs: the cross-entropy
of the true class (untargeted), minus the cross-entropy of the target class
(targeted), or minus the CW margin max(z_y - max_{i != y} z_i + kappa, 0)
(untargeted margin). The last iterate is written (torchattacks' output).
The targeted case aims at class 0, which no input has as its label (clipnn
leaves an example of the target class untouched).

Output: OUTDIR/attack_model.txt (the model, inputs and labels) and one
OUTDIR/attack_<case>.txt per case. Format: lines "name count" followed by
count numbers; float32 values printed with "%.9g" (exact round trip).
OUTDIR defaults to tests/ref beside this script. The files are committed,
so CI never needs PyTorch.
"""
import os
import sys

import torch
import torch.nn.functional as F

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

N_IN, WIDTHS, ACTS, BATCH = 20, (16, 12, 5), ("relu", "tanh", "identity"), 8


def write(f, name, t):
    v = t.detach().reshape(-1).tolist()
    f.write("%s %d\n" % (name, len(v)))
    for i in range(0, len(v), 6):
        f.write(" ".join("%.9g" % x for x in v[i:i + 6]) + "\n")


def build():
    """torch.nn.Linear's default initialisation, weights times 3 so that the
    8 inputs fall in 4 different classes (seed chosen for that)."""
    torch.manual_seed(20)
    layers, fan_in = [], N_IN
    for w in WIDTHS:
        lin = torch.nn.Linear(fan_in, w)
        with torch.no_grad():
            lin.weight.mul_(3.0)
        layers.append(lin)
        fan_in = w
    return layers


def forward(layers, x):
    a = x
    for lin, act in zip(layers, ACTS):
        a = lin(a)
        if act == "relu":
            a = torch.relu(a)
        elif act == "tanh":
            a = torch.tanh(a)
    return a


def margin_loss(z, y, kappa):
    zy = z.gather(1, y[:, None])[:, 0]
    other = z.clone()
    other.scatter_(1, y[:, None], -float("inf"))
    return torch.clamp(zy - other.max(1).values + kappa, min=0)


def ascent_grad(layers, x, y, loss, target, kappa):
    """Gradient of the loss the attack climbs (sum over the batch: each
    example's gradient is its own, as in clipnn)."""
    x = x.clone().requires_grad_(True)
    z = forward(layers, x)
    if loss == "xent" and target is None:
        obj = F.cross_entropy(z, y, reduction="sum")
    elif loss == "xent":
        obj = -F.cross_entropy(z, torch.full_like(y, target), reduction="sum")
    else:
        obj = -margin_loss(z, y, kappa).sum()
    (g,) = torch.autograd.grad(obj, x)
    return g


def fgsm(layers, x, y, eps, loss="xent", target=None, kappa=0.0):
    g = ascent_grad(layers, x, y, loss, target, kappa)
    return torch.clamp(x + eps * g.sign(), 0, 1)


def pgd_linf(layers, x, y, eps, alpha, steps, loss="xent", target=None, kappa=0.0):
    adv = x.clone()
    for _ in range(steps):
        g = ascent_grad(layers, adv, y, loss, target, kappa)
        adv = adv + alpha * g.sign()
        delta = torch.clamp(adv - x, min=-eps, max=eps)
        adv = torch.clamp(x + delta, 0, 1)
    return adv


def pgd_l2(layers, x, y, eps, alpha, steps, loss="xent", target=None, kappa=0.0):
    adv = x.clone()
    for _ in range(steps):
        g = ascent_grad(layers, adv, y, loss, target, kappa)
        gn = torch.norm(g.view(len(x), -1), p=2, dim=1) + 1e-10
        adv = adv + alpha * g / gn.view(-1, 1)
        delta = adv - x
        dn = torch.norm(delta.view(len(x), -1), p=2, dim=1)
        factor = torch.min(eps / dn, torch.ones_like(dn))
        delta = delta * factor.view(-1, 1)
        adv = torch.clamp(x + delta, 0, 1)
    return adv


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref")
    os.makedirs(out, exist_ok=True)
    layers = build()
    torch.manual_seed(11)
    x = torch.rand(BATCH, N_IN)
    with torch.no_grad():
        y = forward(layers, x).argmax(1)
    with open(os.path.join(out, "attack_model.txt"), "w") as f:
        f.write("# 20 -> 16 relu -> 12 tanh -> 5; W [out][in] then b per layer\n")
        for i, lin in enumerate(layers):
            write(f, "W%d" % i, lin.weight)
            write(f, "b%d" % i, lin.bias)
        write(f, "x", x)
        write(f, "labels", y.float())
    cases = {
        "fgsm": lambda: fgsm(layers, x, y, 0.02),
        "fgsm_margin": lambda: fgsm(layers, x, y, 0.02, loss="margin", kappa=0.5),
        "pgd_linf": lambda: pgd_linf(layers, x, y, 0.03, 0.005, 10),
        "pgd_linf_margin": lambda: pgd_linf(layers, x, y, 0.03, 0.005, 10, loss="margin", kappa=0.5),
        "pgd_linf_targeted": lambda: pgd_linf(layers, x, y, 0.05, 0.01, 10, target=0),
        "pgd_l2": lambda: pgd_l2(layers, x, y, 0.15, 0.03, 10),
    }
    for name, run in cases.items():
        adv = run()
        with open(os.path.join(out, "attack_%s.txt" % name), "w") as f:
            f.write("# torch %s, %s; last iterate\n" % (torch.__version__, name))
            write(f, "adv", adv)
            with torch.no_grad():
                write(f, "pred", forward(layers, adv).argmax(1).float())
        print(name, "fooled", int((forward(layers, adv).argmax(1) != y).sum()), "of", BATCH)


if __name__ == "__main__":
    main()
