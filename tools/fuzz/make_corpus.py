#!/usr/bin/env python3
"""Writes the fuzzing seed corpus, Tests/FuzzCorpus/<target>/, one small file per seed.

Seeds are the valid and invalid inputs the project already knows (shipped examples, the
bad-jobs fixtures, tiny model configs) plus small hand-made ones for the binary formats.
Standard library only. Run from the repository root: python3 tools/fuzz/make_corpus.py
"""
import json
import pathlib
import shutil
import struct
import zlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "FuzzCorpus"


def put(target, name, data):
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def job_files():
    for path in sorted((ROOT / "etc" / "jobs").glob("*.yaml")):
        put("job-file", "etc-" + path.name, path.read_bytes())
    for path in sorted((ROOT / "Tests" / "Fixtures" / "bad-jobs").iterdir()):
        if path.suffix in (".yaml", ".bin"):
            put("job-file", "bad-" + path.name, path.read_bytes())
    put("job-file", "full.yaml", """prompt: "a red circle <lora:style:0.5>"
negative_prompt: blurry
model: shapes
width: 64
height: 64
steps: 20
sampler: dpm++2m
schedule: karras
guidance: 5.5
seed: 42
count: 2
priority: high
snapshots: 5
rng: philox
name: first-try
long_prompt: chunk
guidance_cutoff: 0.4
loras:
  - {name: style, weight: 0.7}
""")
    put("job-file", "multi.yaml", "prompt: one\n---\nprompt: two\nseed: 1\n---\n{prompt: 'three', steps: 3}\n")
    put("job-file", "anchors.yaml", "prompt: &p a green square\nnegative_prompt: *p\n")
    put("job-file", "bom.yaml", b"\xef\xbb\xbfprompt: with a byte-order mark\n")
    put("job-file", "unicode.yaml", "prompt: \"\u00e9t\u00e9 \U0001F600 \\u00e9 \\t tab\"\n")


def configs():
    put("config", "etc-diffusiond.yaml", (ROOT / "etc" / "diffusiond.yaml").read_bytes())
    put("config", "mapping-models.yaml", """inbox: inbox
outbox: outbox
state: state
socket: run/diffusiond.sock
threads: 2
default_model: turbo
lora_dir: loras
clip_tokenizer: tok
models:
  shapes: models/shapes
  turbo:
    path: models/sd-turbo
    prediction: epsilon
    tiny_vae: models/taesd
    defaults: {steps: 1, guidance: 0, sampler: euler_a, width: 512, height: 512}
defaults:
  steps: 25
  sampler: euler
  priority: normal
limits:
  max_width: 1024
  max_count: 16
  max_jobs_per_file: 100
""")


def model_configs():
    fixtures = ROOT / "Tests" / "Fixtures"
    for model in ("tiny-sd1", "tiny-sd2", "tiny-taesd"):
        base = fixtures / model
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.json")):
            if path.name in ("vocab.json",):
                continue
            name = model + "-" + "-".join(path.relative_to(base).parts)
            put("model-config", name, path.read_bytes())


def safetensors(tensors, metadata=None):
    """A .safetensors file: {name: (dtype, shape, raw bytes)}."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def floats(n, fmt="<f", scale=0.01):
    return b"".join(struct.pack(fmt, scale * (i % 7 - 3)) for i in range(n))


def half(n):
    return b"".join(struct.pack("<e", 0.01 * (i % 7 - 3)) for i in range(n))


def weights_files():
    put("safetensors", "dtypes.safetensors", safetensors({
        "a": ("F32", [2, 3], floats(6)), "b": ("F16", [4], half(4)),
        "c": ("BF16", [2], b"\x80\x3f\x00\x40"), "d": ("F64", [1], struct.pack("<d", 1.5)),
        "empty": ("F32", [0, 4], b""),
    }, {"format": "pt"}))
    put("safetensors", "kohya-lora.safetensors", safetensors({
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": ("F16", [1, 8], half(8)),
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": ("F16", [8, 1], half(8)),
        "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": ("F32", [], floats(1)),
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": ("F32", [1, 8], floats(8)),
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": ("F32", [8, 1], floats(8)),
    }, {"ss_network_dim": "1", "ss_network_alpha": "1"}))
    put("safetensors", "peft-lora.safetensors", safetensors({
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": ("F32", [1, 8], floats(8)),
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight": ("F32", [8, 1], floats(8)),
    }, {"unet.r": "1", "unet.lora_alpha": "1"}))
    put("safetensors", "ldm-keys.safetensors", safetensors({
        "model.diffusion_model.input_blocks.0.0.weight": ("F16", [8, 4, 3, 3], half(288)),
        "model.diffusion_model.input_blocks.0.0.bias": ("F16", [8], half(8)),
        "model.diffusion_model.out.2.weight": ("F16", [4, 8, 3, 3], half(288)),
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": ("F16", [16, 8], half(128)),
        "first_stage_model.decoder.conv_in.weight": ("F16", [8, 4, 3, 3], half(288)),
        "first_stage_model.post_quant_conv.weight": ("F16", [4, 4, 1, 1], half(16)),
    }))
    for name in ("unknown-key.safetensors", "bad-shape.safetensors"):
        path = ROOT / "Tests" / "Fixtures" / "lora" / name
        if path.exists():
            put("safetensors", name, path.read_bytes())


def control_lines():
    lines = {
        "hello": {"type": "hello", "version": 3, "client": "diffusionctl"},
        "status": {"type": "request", "verb": "status"},
        "show": {"type": "request", "verb": "show", "id": "000001"},
        "priority": {"type": "request", "verb": "priority", "id": "000001", "priority": 80},
        "history": {"type": "request", "verb": "history", "limit": 5, "rejected": True},
        "intake": {"type": "request", "verb": "intake", "since": 3},
        "reply": {"type": "hello", "version": 3, "server": "diffusiond", "uid": 0},
        "failure": {"type": "error", "status": "forbidden", "message": "only the job's owner may cancel it"},
        "event": {"kind": "progress", "at": 1700000000, "id": "000001",
                  "progress": {"step": 3, "total": 25, "image": 0, "count": 2, "rate": 1.5}},
    }
    for name, value in lines.items():
        put("control", name + ".jsonl", json.dumps(value) + "\n")
    put("control", "session.jsonl", "".join(json.dumps(lines[k]) + "\n" for k in ("hello", "status", "show")))
    put("control", "no-newline.jsonl", json.dumps(lines["status"]))


def png(width, height, rows, color_type=2, bit_depth=8, text=None):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    body = chunk(b"IHDR", ihdr)
    if text:
        body += chunk(b"tEXt", text)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def pngs():
    put("png", "rgb-4x3.png", png(4, 3, [bytes([x * 60, y * 80, 128] * 1)[:3] * 4 for x, y in zip(range(3), range(3))]))
    put("png", "gray-2x2.png", png(2, 2, [b"\x00\xff", b"\x80\x40"], color_type=0))
    put("png", "rgba-2x1.png", png(2, 1, [b"\xff\x00\x00\x80\x00\xff\x00\xff"], color_type=6))
    put("png", "parameters.png", png(1, 1, [b"\x10\x20\x30"], text=b"parameters\x00a red circle\nSteps: 25, Seed: 1"))


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    job_files()
    configs()
    model_configs()
    weights_files()
    control_lines()
    pngs()
    for folder in sorted(OUT.iterdir()):
        print(f"{folder.name}: {len(list(folder.iterdir()))} seeds")


if __name__ == "__main__":
    main()
