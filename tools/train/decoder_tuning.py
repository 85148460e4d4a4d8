"""Phase 3b of train.py: the VAE decoder alone trains on, against the frozen encoder's
latents (see tune_decoder for why)."""

import time

import torch

from train_util import batch_rng, hard_pixel_loss, log, lr_at, reconstruction_loss, to_device


def tune_decoder(args, vae, opt_vae, images, latent_stats, state, device, after_step):
    """Trains the VAE's decoder (and post_quant_conv) on, encoder and quant_conv frozen.

    The first 1,500 joint VAE steps leave a decoder that blurs small triangles into blobs
    and puts a speck of another colour on the top edge of objects: the held-out scenes, only
    encoded and decoded, score 84.5% colour + shape with the adherence evaluator, less than
    the UNet's own images reach. Freezing the encoder keeps the latent space (and its
    scaling factor) exactly as it is, so a UNet trained on it stays valid, and the decoder
    alone costs about half a joint step per image. It learns on latents drawn from each
    scene's posterior (mean + std * noise, as the UNet's x0 are), L1 + MSE as in phase 2
    (outline pixels weighted by --vae-edge-weight), plus --decoder-hard-weight times
    `hard_pixel_loss` (pixels far off their colour) when that is set.

    `state["step"]` counts this phase's steps (resumable); `after_step()` is called after
    each one and returns True to stop early (checkpoint written by the caller)."""
    mean, std = latent_stats
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    vae.train()
    t_phase, acc = time.time(), 0.0
    while state["step"] < args.decoder_steps:
        step = state["step"]
        g = batch_rng(args.seed, 4, step)
        idx = to_device(torch.randint(0, args.pool, (args.decoder_batch,), generator=g), device)
        z = mean[idx] + std[idx] * to_device(torch.randn(mean[idx].shape, generator=g), device)
        x = images[idx].float() / 127.5 - 1
        # AdamW skips the frozen encoder's parameters (no gradient).
        acc += decoder_step(vae, opt_vae, params, z, x, lr_at(step, args.decoder_steps, args.decoder_lr, warmup=50),
                            args.vae_edge_weight, args.decoder_hard_weight)
        state["step"] = step + 1
        if state["step"] % args.log_every == 0:
            per = (time.time() - t_phase) / args.log_every
            log(args.work, "decoder", state["step"], f"{acc.item() / args.log_every:.5f}", f"{per:.3f}s/step")
            acc, t_phase = 0.0, time.time()
        if after_step():
            return False
    vae.eval()
    return True


def reconstruction_error(vae, images, latent_stats, count=2000):
    """Mean absolute error (0-255) of decoding the first `count` scenes' posterior means."""
    mean, _ = latent_stats
    err, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, min(count, len(images)), 500):
            x = images[i:i + 500].float() / 127.5 - 1
            err += (vae.decode(mean[i:i + 500]).sample.clamp(-1, 1) - x).abs().sum().item() * 127.5
            n += x.numel()
    return err / n


def decoder_step(vae, opt, params, z, x, lr, edge_weight, hard_weight):
    """One optimiser step of the decoder at learning rate `lr`: decode latents `z`, the loss
    against pictures `x` (`reconstruction_loss`, outline pixels weighted `edge_weight`, plus
    `hard_weight` times `hard_pixel_loss` when that is set), gradients of `params` clipped to
    norm 1. Returns the loss, detached."""
    for group in opt.param_groups:
        group["lr"] = lr
    rec = vae.decode(z).sample
    loss = reconstruction_loss(rec, x, edge_weight)
    if hard_weight:
        loss = loss + hard_weight * hard_pixel_loss(rec, x)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.detach()
