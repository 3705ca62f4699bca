#!/usr/bin/python3
"""PyTorch models as safetensors and npz files for clipnn's import, and
clipnn's exports loaded back into PyTorch (tests/test_export.c).

Run with Debian's interpreter, which has python3-torch and numpy, after
`make` (the export check runs the clipnn tool; CLIPNN_BIN overrides
build/clipnn):

    /usr/bin/python3 scripts/torch_export_check.py [OUTDIR]

OUTDIR defaults to tests/ref beside this script; the output is committed so
the tests need no PyTorch. For each case (an MLP, a two-layer LSTM, a GRU,
an Elman RNN with relu, each with a dense head) it writes

    export_CASE.safetensors   the module's state_dict (F32, written here:
                              8-byte header length, JSON header, data), with
                              no clipnn metadata: a model trained in PyTorch
    export_CASE.npz           the same through numpy.savez
    export_CASE.txt           (format of scripts/torch_reference.py) the
                              attributes act, steps, every_step, the inputs
                              x [B][T*d] and torch's float32 logits

then imports the safetensors file with the clipnn tool, exports the
checkpoint again (safetensors and npz), loads both exports into a fresh
module with load_state_dict(strict=True) and compares their logits with the
original module's: the attribute export_max_abs_diff records the largest
difference (0 when the export carries the same float32 weights under the
names PyTorch expects).
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import RefFile  # noqa: E402

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
BATCH = 5


class Recurrent(torch.nn.Module):
    """A recurrent front (batch_first) and a dense head on the last step."""

    def __init__(self, rnn, head, steps, every_step=False):
        super().__init__()
        self.rnn, self.head, self.steps, self.every_step = rnn, head, steps, every_step

    def forward(self, x):
        out, _ = self.rnn(x.view(x.shape[0], self.steps, -1))
        return self.head(out if self.every_step else out[:, -1])


def cases():
    """name -> (module, act given to clipnn import, steps, step_dim * steps)."""
    lin = torch.nn.Linear
    yield "mlp", torch.nn.Sequential(lin(6, 5), torch.nn.Tanh(), lin(5, 4), torch.nn.Tanh(), lin(4, 3)), "tanh", 0, 6
    yield "lstm", Recurrent(torch.nn.LSTM(3, 5, 2, batch_first=True), torch.nn.Sequential(lin(5, 4)), 4), "tanh", 4, 12
    yield "gru", Recurrent(torch.nn.GRU(3, 6, 1, batch_first=True), torch.nn.Sequential(lin(6, 2)), 5), "tanh", 5, 15
    relu_rnn = torch.nn.RNN(2, 4, 1, nonlinearity="relu", batch_first=True)
    head = torch.nn.Sequential(lin(4, 3), torch.nn.ReLU(), lin(3, 2))
    yield "rnn_relu", Recurrent(relu_rnn, head, 3), "relu", 3, 6


def reinit(module, gen):
    """U(+-1/sqrt(fan)) from our own generator, independent of global state."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            fan = p.shape[-1] if "weight" in name and "_hh" not in name and "_ih" not in name else None
            bound = 1.0 / math.sqrt(fan if fan else 5)
            p.copy_(torch.rand(p.shape, generator=gen) * 2 * bound - bound)


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", e
        b, end = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + b : 8 + n + end], dtype="<f4").reshape(e["shape"]).copy())
    return out, meta


def read_npz(path):
    z = np.load(path)
    meta = json.loads(z["__metadata__.json"]) if "__metadata__.json" in z.files else {}
    return {k: torch.from_numpy(z[k]) for k in z.files if k != "__metadata__.json"}, meta


def export_check(tool, name, module, act, steps, src, x, logits):
    """clipnn import then export; both exports back into torch."""
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "m.ckpt")
        cmd = [tool, "import", src, ckpt, "--act", act] + (["--seq-steps", str(steps)] if steps else [])
        cmd += ["--rnn-relu"] if name == "rnn_relu" else []
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        for fmt, reader in (("safetensors", read_safetensors), ("npz", read_npz)):
            out = os.path.join(tmp, "m." + fmt)
            subprocess.run([tool, "export", "--model", ckpt, out], check=True, stdout=subprocess.DEVNULL)
            state, meta = reader(out)
            assert "clipnn.layers" in meta, meta
            fresh = type(module)(*module_args(module)) if isinstance(module, Recurrent) else None
            target = fresh if fresh is not None else torch.nn.Sequential(*[type(m)(*module_args(m)) for m in module])
            target.load_state_dict(state, strict=True)
            with torch.no_grad():
                worst = max(worst, (target(x) - logits).abs().max().item())
    return worst


def module_args(m):
    if isinstance(m, Recurrent):
        rnn = m.rnn
        kind = type(rnn)
        kw = {"nonlinearity": rnn.nonlinearity} if kind is torch.nn.RNN else {}
        new_rnn = kind(rnn.input_size, rnn.hidden_size, rnn.num_layers, batch_first=True, **kw)
        head = torch.nn.Sequential(*[type(h)(*module_args(h)) for h in m.head])
        return new_rnn, head, m.steps, m.every_step
    if isinstance(m, torch.nn.Linear):
        return m.in_features, m.out_features
    return ()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "ref")
    tool = os.environ.get("CLIPNN_BIN", os.path.join(here, "..", "build", "clipnn"))
    gen = torch.Generator().manual_seed(1313)
    for name, module, act, steps, n_in in cases():
        reinit(module, gen)
        x = torch.rand((BATCH, n_in), generator=gen) * 2 - 1
        with torch.no_grad():
            logits = module(x)
        base = os.path.join(outdir, "export_" + name)
        state = module.state_dict()
        write_safetensors(base + ".safetensors", state, {"format": "pt"})
        np.savez(base + ".npz", **{k: v.numpy() for k, v in state.items()})
        ref = RefFile(base + ".txt", "PyTorch module %s (%s), its state_dict in export_%s.safetensors and .npz"
                      % (name, type(module).__name__, name))
        ref.attr("act", act)
        ref.attr("steps", steps)
        ref.lines.append("# tensors: " + ", ".join(state.keys()))
        ref.array("x", x)
        ref.array("logits", logits)
        diff = export_check(tool, name, module, act, steps, base + ".safetensors", x, logits)
        ref.attr("export_max_abs_diff", repr(diff))
        ref.save()
        print("%s: %s; clipnn export back into torch: max |logit difference| %g" % (name, ",".join(state.keys()), diff))


if __name__ == "__main__":
    main()
