"""Phase 4 of train.py: the text encoder is trained alone first, then frozen (see
pretrain_text_encoder for why)."""

import time

import torch
import torch.nn.functional as F

import shapes_data
from train_util import batch_rng, log, lr_at, to_device


def scene_labels(scenes):
    """Per scene: background colour, then colour, shape and position of the first and
    second object in caption order (-100, ignored by cross_entropy, where there is none)."""
    rows = []
    for s in scenes:
        row = [s["background"]]
        for k in range(2):
            o = s["objects"][k] if k < len(s["objects"]) else None
            row += [o["color"], o["shape"], o["position"]] if o else [-100, -100, -100]
        rows.append(row)
    return torch.tensor(rows)


def pretrain_text_encoder(args, te, tokens, scenes, device):
    """Trains the text encoder alone, before the UNet, and freezes it.

    Trained jointly from scratch, the text encoder and UNet found backgrounds, colours and
    shapes but collapsed the position words: early on the UNet cannot place anything yet, so
    variation in those tokens' outputs only adds error and the text encoder learns to make
    them all alike (the outputs for "top left" and "bottom right" ended 1.1 apart, L2 over
    77x128, against 47 for two colour words), after which the UNet gets no position signal
    to learn from. Here two linear heads (thrown away afterwards) make every caption's
    outputs carry its content first: at every token, which token it is (so each word keeps
    its own output, position words too), and at the end-of-text token (which, through the
    causal mask, has read the whole caption) the scene: background, and each object's colour,
    shape and position. The UNet then trains against this fixed text encoder."""
    labels = to_device(scene_labels(scenes), device)
    vocab = te.config.vocab_size
    width = te.config.hidden_size
    token_head = torch.nn.Linear(width, vocab).to(device)
    sizes = [len(shapes_data.COLORS)] + [len(shapes_data.COLORS), len(shapes_data.SHAPES), len(shapes_data.POSITIONS)] * 2
    scene_heads = torch.nn.ModuleList(torch.nn.Linear(width, n) for n in sizes).to(device)
    params = list(te.parameters()) + list(token_head.parameters()) + list(scene_heads.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    eos = te.config.eos_token_id
    te.train()
    t_phase = time.time()
    for step in range(args.text_steps):
        g = batch_rng(args.seed, 3, step)
        idx = to_device(torch.randint(0, len(scenes), (args.text_batch,), generator=g), device)
        ids = tokens[idx]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.text_steps, 1e-3, warmup=50)
        hidden = te(ids)[0]
        # the caption's own tokens and its first end-of-text token (the padding repeats it)
        first_eos = (ids == eos).int().argmax(dim=1)
        positions = torch.arange(ids.shape[1], device=device)[None]
        keep = positions <= first_eos[:, None]
        token_loss = F.cross_entropy(token_head(hidden[keep]), ids[keep])
        pooled = hidden[torch.arange(ids.shape[0], device=device), first_eos]
        scene_loss = sum(F.cross_entropy(head(pooled), labels[idx, k], ignore_index=-100)
                         for k, head in enumerate(scene_heads)) / len(scene_heads)
        loss = token_loss + scene_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % args.log_every == 0:
            with torch.no_grad():
                right = [(head(pooled).argmax(1) == labels[idx, k]).float()[labels[idx, k] >= 0].mean().item()
                         for k, head in enumerate(scene_heads)]
            per = (time.time() - t_phase) / args.log_every
            log(args.work, "text", step + 1, f"{token_loss.item():.4f}", f"{scene_loss.item():.4f}",
                "scene accuracy", " ".join(f"{r:.2f}" for r in right), f"{per:.3f}s/step")
            t_phase = time.time()
    te.eval()
