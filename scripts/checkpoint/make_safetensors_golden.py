#!/usr/bin/python3
"""Writes testdata/safetensors/python_mixed.safetensors and python_mixed.json.

An independent safetensors writer (struct + json, following the format specification) with
dtype conversions done by PyTorch, so the Go reader is checked against another implementation:
F32, F16, BF16 and F64 tensors and an I64 tensor (recognised, not readable as float).
The JSON holds, per float tensor, the float32 bit patterns PyTorch gets when converting the
stored values to float32, and "bf16_rne": PyTorch's bf16 rounding of the source values.

Run from the repository root with Debian's interpreter: /usr/bin/python3 scripts/checkpoint/make_safetensors_golden.py
"""
import json
import struct

import torch

src = torch.tensor(
    [1.0, -2.5, 3.1415927, 1e-8, -65504.0, 70000.0, 1.00390625, 1.01171875, 0.1, -0.0,
     5.9604645e-08, 1.0e30, 2.0 ** -140, 0.33333334, -1.7299999, 255.5],
    dtype=torch.float32)

tensors = {
    "f32": src[:6].reshape(2, 3).clone(),
    "f16": src.to(torch.float16),            # 70000 and 1e30 overflow to inf in f16, as intended
    "bf16": src.to(torch.bfloat16).reshape(4, 4),
    "f64": src.to(torch.float64)[:5],
    "ids": torch.tensor([3, -1], dtype=torch.int64),
}
names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
         torch.float64: "F64", torch.int64: "I64"}

def raw(t):
    if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
        return t.contiguous().view(torch.int16).numpy().tobytes()
    return t.contiguous().numpy().tobytes()

header = {"__metadata__": {"format": "pt", "writer": "make_safetensors_golden.py"}}
data = b""
for name in ["ids", "f16", "f32", "bf16", "f64"]:  # data order differs from name order
    t = tensors[name]
    b = raw(t)
    header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                    "data_offsets": [len(data), len(data) + len(b)]}
    data += b
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open("testdata/safetensors/python_mixed.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)

def bits(t):
    return t.to(torch.float32).flatten().contiguous().view(torch.int32).numpy().astype("uint32").tolist()

expect = {name: {"shape": list(tensors[name].shape), "f32_bits": bits(tensors[name])}
          for name in ["f16", "f32", "bf16", "f64"]}
expect["src_f32_bits"] = bits(src)
expect["bf16_rne"] = src.to(torch.bfloat16).flatten().view(torch.int16).numpy().astype("uint16").tolist()
with open("testdata/safetensors/python_mixed.json", "w") as f:
    json.dump(expect, f, indent=1)
    f.write("\n")
